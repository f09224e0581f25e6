"""``ssi-plugin ingest DATASET --index I``: annotate and bulk index a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ssi_plugin.cli._context import engine_flags, engine_options, log
from ssi_plugin.cli._dataset_options import annotator_options, dataset_options


@click.command("ingest")
@dataset_options
@click.option("--index", required=True, help="Target index (created with the SSI mappings if missing).")
@click.option("--failures", type=click.Path(path_type=Path, dir_okay=False), help="Failure file (default: INDEX.failures.jsonl).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=500, show_default=True, help="Documents per bulk request.")
@click.option("--vectors", is_flag=True, help="Also write each caption's all-MiniLM-L6-v2 embedding (field caption_vector) "
              "for the dense leg of hybrid search; documents indexed before without one get it too.")
@annotator_options
@engine_options
@click.pass_context
def ingest_command(
    ctx: click.Context,
    dataset: Path,
    images_dir: Path | None,
    split: str | None,
    limit: int | None,
    index: str,
    failures: Path | None,
    chunk_size: int,
    vectors: bool,
    annotator_kind: str,
    annotator_options: Any,
) -> None:
    """Annotate DATASET and index it into --index.

    Searchers take the new identifiers in from the index themselves (a running
    serve within seconds); nothing is rebuilt.

    Resumes where it stopped: images the index already holds with this
    annotator version are skipped. Exit code 6 when some images failed; each is
    listed with its stage and reason in the failure file.
    """
    from ssi_plugin import SSIIndex
    from ssi_plugin.errors import PartialFailure

    with SSIIndex.connect(index=index, log=log, **engine_flags(ctx)) as target:
        summary = target.ingest(dataset, images_dir=images_dir, split=split, limit=limit, annotator=annotator_kind,
                                annotator_options=annotator_options, failures=failures, chunk_size=chunk_size, vectors=vectors)
    click.echo(
        f"{summary.indexed} indexed, {summary.skipped} already there, {summary.failed} failed "
        f"in {summary.seconds:.1f} s ({summary.docs_per_second:.0f} docs/s); "
        f"collision rate {summary.collisions.collision_rate:.1%}"
        + (f"; {summary.vectors} caption vectors written" if vectors else "")
    )
    if summary.failed:
        raise PartialFailure(
            f"{summary.failed} images failed; see {summary.failures}", failed=summary.failed, recorded_at=str(summary.failures)
        )
