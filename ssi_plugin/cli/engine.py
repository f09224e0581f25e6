"""``ssi-plugin engine start|stop|status``: the embedded local node."""

from __future__ import annotations

import click

from ssi_plugin.cli._context import engine_options, engine_settings


@click.group("engine")
def engine_group() -> None:
    """Manage the embedded local search node (OpenSearch by default)."""


_ENGINE_CHOICE = click.option(
    "--engine",
    "kind",
    type=click.Choice(["opensearch", "elasticsearch"]),
    default="opensearch",
    show_default=True,
    help="Which engine's local node.",
)


@engine_group.command("start")
@_ENGINE_CHOICE
@click.option("--port", type=int, help="HTTP port (a free one when unset).")
@engine_options(client_choice=False)
@click.pass_context
def start(ctx: click.Context, kind: str, port: int | None) -> None:
    """Start the local node (building its launcher with Maven on first use)."""
    from ssi_plugin.engine.local_node import LocalNode

    node = LocalNode(engine_settings(ctx).cache_dir, kind=kind)
    click.echo(f"Starting local {kind} node (data in {node.data_dir}) ...", err=True)
    status = node.start(port=port, progress=lambda line: click.echo(f"  {line}", err=True))
    click.echo(f"{kind} {status.version} ready at {status.url} (pid {status.pid})")


@engine_group.command("stop")
@_ENGINE_CHOICE
@engine_options(client_choice=False)
@click.pass_context
def stop(ctx: click.Context, kind: str) -> None:
    """Stop the local node."""
    from ssi_plugin.engine.local_node import LocalNode

    status = LocalNode(engine_settings(ctx).cache_dir, kind=kind).stop()
    click.echo(f"Stopped local {kind} node (pid {status.pid}).")


@engine_group.command("status")
@_ENGINE_CHOICE
@engine_options(client_choice=False)
@click.pass_context
def status(ctx: click.Context, kind: str) -> None:
    """Say whether the local node runs, and where."""
    from ssi_plugin.engine.local_node import LocalNode

    node_status = LocalNode(engine_settings(ctx).cache_dir, kind=kind).status()
    if node_status.running:
        version = node_status.version or "(starting)"
        click.echo(f"running: {kind} {version} at {node_status.url} (pid {node_status.pid}, log {node_status.log_file})")
    else:
        click.echo(f"not running (data in {node_status.data_dir})")
        ctx.exit(1)
