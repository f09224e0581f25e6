"""``ssi-plugin annotate DATASET --out FILE``: identifiers and rationales for a dataset, to JSONL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ssi_plugin.cli._dataset_options import annotator_options, dataset_options


@click.command("annotate")
@dataset_options
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="Output JSONL (resumed if it exists).")
@click.option("--overwrite", is_flag=True, help="Start a new output instead of resuming.")
@annotator_options
def annotate_command(
    dataset: Path,
    images_dir: Path | None,
    split: str | None,
    limit: int | None,
    out: Path,
    overwrite: bool,
    annotator_kind: str,
    annotator_options: Any,
) -> None:
    """Annotate DATASET (JSONL, Karpathy or COCO JSON) into --out; failures go to OUT.failures.jsonl.

    Exit code 6 when some images could not be annotated (each is listed with its reason).
    """
    from ssi_plugin.annotation.factory import create_annotator
    from ssi_plugin.annotation.job import annotate_dataset
    from ssi_plugin.datasets import counted_dataset
    from ssi_plugin.errors import PartialFailure

    records, total = counted_dataset(dataset, images_dir=images_dir, split=split, limit=limit)
    click.echo(f"Loading the {annotator_kind} annotator ...", err=True)
    with create_annotator(annotator_kind, annotator_options) as annotator:
        click.echo(f"Annotating {total} images of {dataset} with {annotator.version} into {out} ...", err=True)
        summary = annotate_dataset(records, annotator, out, total=total, overwrite=overwrite)
    report = summary.collisions
    click.echo(
        f"{summary.annotated} annotated, {summary.skipped} already done, {summary.failed} failed "
        f"in {summary.seconds:.1f} s ({summary.images_per_second:.0f} images/s)"
    )
    click.echo(
        f"collisions: {report.collided} of {report.images} images ({report.collision_rate:.1%}); "
        f"{report.resolved_by_concept} resolved by a further concept, {report.resolved_by_suffix} by a #n suffix"
    )
    if summary.failed:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(summary.failure_reasons.items()))
        raise PartialFailure(
            f"{summary.failed} images could not be annotated ({reasons}); see {summary.failures}",
            failed=summary.failed,
            recorded_at=str(summary.failures),
        )
