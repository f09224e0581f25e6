"""``ssi-plugin reindex --source S --dest D [--alias A] [--resume]``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ssi_plugin.cli._context import connect_engine, engine_options
from ssi_plugin.cli._dataset_options import annotator_options


@click.command("reindex")
@click.option("--source", required=True, help="Index (or alias) to read.")
@click.option("--dest", required=True, help="Index to write (created with the SSI mappings if missing).")
@click.option("--alias", help="Alias to point at --dest once it holds every source document.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run into a non-empty --dest.")
@click.option("--caption-field", default="caption", show_default=True, help="Source field holding the caption.")
@click.option("--image-field", default="image", show_default=True, help="Source field holding the image path or URL.")
@click.option("--failures", type=click.Path(path_type=Path, dir_okay=False), help="Failure file (default: DEST.failures.jsonl).")
@click.option("--chunk-size", type=click.IntRange(min=1), default=500, show_default=True, help="Documents per page and bulk request.")
@click.option("--vectors", is_flag=True, help="Also write each caption's all-MiniLM-L6-v2 embedding (field caption_vector) "
              "for the dense leg of hybrid search, in every document copied.")
@annotator_options
@engine_options
@click.pass_context
def reindex_command(
    ctx: click.Context, source: str, dest: str, alias: str | None, resume: bool, caption_field: str, image_field: str,
    failures: Path | None, chunk_size: int, vectors: bool, annotator_kind: str, annotator_options: Any,
) -> None:
    """Copy SOURCE into DEST, annotating documents without a current identifier, then move ALIAS.

    Exit code 6 when some documents failed (the alias is then left where it was).
    """
    from ssi_plugin.annotation.factory import create_annotator
    from ssi_plugin.indexing.reindex import reindex

    failures = failures or Path(f"{dest}.failures.jsonl")
    with connect_engine(ctx) as engine, create_annotator(annotator_kind, annotator_options) as annotator:
        click.echo(f"Reindexing {source} -> {dest} on {engine.kind} {engine.url} with {annotator.version} ...", err=True)
        summary = reindex(
            engine, annotator, source=source, dest=dest, alias=alias, resume=resume, failures=failures,
            caption_field=caption_field, image_field=image_field, chunk_size=chunk_size, vectors=vectors,
        )
    click.echo(
        f"{summary.dest_count} of {summary.source_count} documents in {dest}: {summary.copied} copied, "
        f"{summary.annotated} annotated, {summary.skipped} already there, in {summary.seconds:.1f} s"
    )
    if summary.alias_moved:
        click.echo(f"alias {alias} -> {dest}")
