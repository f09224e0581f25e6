"""``ssi-plugin search "text" --index I``: generate identifiers, query, fuse, show the hits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ssi_plugin.cli._context import engine_flags, engine_options, log
from ssi_plugin.cli._image_query_options import image_annotator_options

if TYPE_CHECKING:
    from ssi_plugin.search.image_query import QueryImageReader
    from ssi_plugin.search.options import Fusion


@click.command("search")
@click.argument("text", required=False)
@click.option("--image", "image_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Search with this image (TEXT, if given, is its caption): the annotator's identifier of it is searched.")
@click.option("--index", required=True, help="Index (or alias) to search.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Generator folder (default: the one trained for --index).",
)
@click.option("--size", type=click.IntRange(min=1), default=10, show_default=True, help="Hits to show.")
@click.option("-k", "--candidates", "k", type=click.IntRange(1, 100), default=10, show_default=True, help="Identifiers to generate.")
@click.option("--fusion", type=click.Choice(["linear", "rrf"]), help="How the lists are fused [default: the searcher's, linear].")
@click.option("--bm25-field", help="The BM25 list (fused unless the generator is sure of the image that explains the query best) "
              "searches this text field [default: caption, "
              "unless --hybrid].")
@click.option("--no-bm25", is_flag=True, help="No BM25 list.")
@click.option("--hybrid", is_flag=True, help="Also ask the engine's kNN search over the caption vectors "
              "(ingest --vectors) and fuse it in.")
@click.option("--vector-field", help="The dense leg searches this vector field instead (implies --hybrid).")
@click.option("--explain", is_flag=True, help="Show the matched concepts and list ranks of each hit.")
@click.option("--json", "as_json", is_flag=True, help="Print the engine's own search response format.")
@image_annotator_options
@engine_options
@click.pass_context
def search_command(
    ctx: click.Context, text: str | None, image_file: Path | None, images: QueryImageReader, index: str, model_dir: Path | None,
    size: int, k: int, fusion: Fusion | None, bm25_field: str | None, no_bm25: bool, hybrid: bool, vector_field: str | None,
    explain: bool, as_json: bool,
) -> None:
    """Search INDEX for images matching TEXT, or like the image of --image."""
    from ssi_plugin import SSIIndex

    if text is None and image_file is None:
        raise click.UsageError("give TEXT, --image FILE, or both")
    with SSIIndex.connect(index=index, generator_dir=model_dir, images=images, log=log, **engine_flags(ctx)) as searched:
        result = searched.search(text, image=image_file, size=size, k=k, fusion=fusion, bm25_field=bm25_field, bm25=not no_bm25,
                                 hybrid=hybrid, vector_field=vector_field, explain=explain or as_json)
    if as_json:
        click.echo(json.dumps(result.as_engine_response(), indent=2))
        return
    for warning in result.generation.warnings:
        click.echo(f"note: {warning}", err=True)
    if result.empty_lists:
        click.echo(f"note: these lists found nothing: {', '.join(result.empty_lists)}", err=True)
    click.echo(f"{len(result.hits)} of {result.total} hits in {result.took_ms:.0f} ms "
               f"(generate {result.generate_ms:.0f} ms, engine {result.engine_ms:.0f} ms)")
    for rank, hit in enumerate(result.hits, start=1):
        caption = (hit.source or {}).get("caption") or ""
        click.echo(f"{rank:>3}. {hit.id}  [{hit.identifier}]  {caption}")
        if explain:
            shares = ", ".join(f"{name} {share:.2f}" for name, share in hit.shares.items())
            click.echo(f"     matched: {', '.join(hit.matched_concepts) or '-'}; ranks: {hit.ranks}; shares: {shares}")
