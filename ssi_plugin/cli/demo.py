"""``ssi-plugin demo``: the main job of the README."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import urlencode

import click

from ssi_plugin.cli._context import connect_engine, engine_options, engine_settings
from ssi_plugin.cli.serve import DEFAULT_PORT


@click.command("demo")
@click.option("--epochs", type=click.IntRange(min=1), help="Training epochs (default: the trainer's).")
@click.option("--full", is_flag=True, help="Also train and compare SSI without RGS and numeric ids (about 3x longer).")
@engine_options
@click.pass_context
def demo_command(ctx: click.Context, epochs: int | None, full: bool) -> None:
    """Ingest the bundled photographs, train, search, and print the evaluation table."""
    from ssi_plugin.demo import DEMO_INDEX, run_demo
    from ssi_plugin.evaluation import markdown_table
    from ssi_plugin.serving.search_page import PAGE_PATH

    def log(line: str) -> None:
        click.echo(line, err=True)

    with connect_engine(ctx) as engine:
        log(f"Using {engine.kind} {engine.info.version} at {engine.url}")
        result = run_demo(engine, engine_settings(ctx).cache_dir, epochs=epochs, full=full, log=log)
    click.echo("\nExample searches (paraphrased captions the model never saw):")
    unseen = set(result.report.unseen_images)
    for example, image in zip(result.examples, result.example_images, strict=True):
        when = "ingested after training" if image in unseen else "trained on"
        click.echo(f'\n  "{example.query.query}"  ({example.took_ms:.0f} ms; written for {image}, {when})')
        for rank, hit in enumerate(example.hits, start=1):
            click.echo(f"    {rank}. {hit.id:<22} [{hit.identifier}]")
            click.echo(f"       matched: {', '.join(hit.matched_concepts) or '-'}")
    click.echo("\n" + markdown_table(result.report))
    click.echo(f"Report: {result.files.json_path}, {result.files.markdown}, {result.files.plot}")
    click.echo("\nSee the pictures: serve the demo index with its search page, then open the address below.")
    click.echo(f"  {_serve_command(ctx, DEMO_INDEX, Path(result.report.models['ssi']['folder']))}")
    click.echo(f"  http://127.0.0.1:{DEFAULT_PORT}{PAGE_PATH}?{urlencode({'q': result.examples[0].query.query})}")


def _serve_command(ctx: click.Context, index: str, model_dir: Path) -> str:
    """``ssi-plugin serve`` on ``index``, on the cluster and cache this run used (credentials are not repeated)."""
    flags = ctx.find_root().obj.get("engine_flags", {}) if ctx.find_root().obj else {}
    where = [part for name in ("url", "cache_dir") if name in flags
             for part in (f"--{name.replace('_', '-')}", str(flags[name]))]
    return shlex.join(["ssi-plugin", *where, "serve", "--index", index, "--model", str(model_dir)])
