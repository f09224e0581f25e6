"""``ssi-plugin eval DATASET --json OUT``: Recall@1/5/10, MRR and latency of SSI and its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ssi_plugin.cli._context import connect_engine, engine_options, engine_settings
from ssi_plugin.cli._dataset_options import annotator_options, dataset_options

RETRIEVERS = ("bm25", "dense-minilm", "dense-engine", "ssi", "ssi-no-rgs", "numeric-ids", "ssi+dense")


@click.command("eval")
@dataset_options
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Report file; the markdown table (.md) and plot (.png) are written beside it.")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False), help="Markdown table elsewhere.")
@click.option("--plot", type=click.Path(path_type=Path, dir_okay=False), help="PNG plot elsewhere.")
@click.option("--index", help="Index to ingest into (default: ssi-eval-<hash of the ingested content>, reused while unchanged).")
@click.option("--retriever", "retrievers", type=click.Choice(RETRIEVERS), multiple=True,
              help="Evaluate only these (repeatable; default: all).")
@click.option("--generator", "generators", multiple=True, metavar="NAME=FOLDER",
              help="Also evaluate a generator trained elsewhere (repeatable).")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs of the trained variants (default: the trainer's).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train each generator variant with seeds 0..N-1 and report their mean as well: on a small dataset one "
                   "training's Recall@1 moves by several points with the seed alone.")
@click.option("--unseen", type=click.FloatRange(min=0, max=1, max_open=True), default=0.0, show_default=True,
              metavar="FRACTION", help="Hold this share of the images back from training and ingest them after it (no "
              "retraining); every figure is then reported for seen and unseen images apart.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Seed of the draw of unseen images.")
@click.option("--max-queries", type=click.IntRange(min=1), help="Ask only the first N queries (every image is still ingested).")
@click.option("--work-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Trained models and failure files, reused by later runs (default: CACHE_DIR/eval).")
@annotator_options
@engine_options
@click.pass_context
def eval_command(
    ctx: click.Context,
    dataset: Path,
    images_dir: Path | None,
    split: str | None,
    limit: int | None,
    json_path: Path,
    markdown: Path | None,
    plot: Path | None,
    index: str | None,
    retrievers: tuple[str, ...],
    generators: tuple[str, ...],
    epochs: int | None,
    seeds: int,
    unseen: float,
    split_seed: int,
    max_queries: int | None,
    work_dir: Path | None,
    annotator_kind: str,
    annotator_options: Any,
) -> None:
    """Ingest DATASET with each image's first caption, train, and query with the other captions.

    Compares SSI (with and without Rationale-Guided Supervision, and fused with
    the engine's kNN search), a GRACE-style numeric-id generator, BM25 on the
    caption field and dense MiniLM retrieval (exact, and through the engine).
    Reruns reuse the index and the trained models while their inputs are unchanged.
    """
    from ssi_plugin.annotation.factory import create_annotator
    from ssi_plugin.datasets import counted_dataset
    from ssi_plugin.evaluation import (
        BASELINES,
        EvalOptions,
        default_variants,
        evaluate,
        markdown_table,
        parse_generator_option,
        write_report,
    )

    chosen = set(retrievers or RETRIEVERS)
    variants = [v for v in default_variants(epochs=epochs, seeds=seeds) if v.family in chosen]
    variants += [parse_generator_option(g) for g in generators]
    options = EvalOptions(
        work_dir=work_dir or engine_settings(ctx).cache_dir / "eval",
        index=index,
        variants=tuple(variants),
        baselines=tuple(name for name in BASELINES if name in chosen),
        max_queries=max_queries,
        unseen=unseen,
        split_seed=split_seed,
    )
    records, _ = counted_dataset(dataset, images_dir=images_dir, split=split, limit=limit)
    def log(line: str) -> None:
        click.echo(line, err=True)

    with connect_engine(ctx) as engine, create_annotator(annotator_kind, annotator_options) as annotator:
        report = evaluate(engine, records, annotator, options, dataset=str(dataset), log=log)
    files = write_report(report, json_path, markdown=markdown, plot=plot)
    click.echo(markdown_table(report))
    click.echo(f"Wrote {files.json_path}, {files.markdown} and {files.plot}", err=True)
