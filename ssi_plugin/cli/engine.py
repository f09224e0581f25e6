"""``ssi-plugin engine start|stop|status``: the embedded local node."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ssi_plugin.cli._context import engine_options, engine_settings

if TYPE_CHECKING:
    from ssi_plugin.config import EngineKind
    from ssi_plugin.engine.local_node import LocalNode


@click.group("engine")
def engine_group() -> None:
    """Manage the embedded local search node (OpenSearch by default)."""


def local_node_options(command: Callable[..., Any]) -> Any:
    """``--engine`` and the connection flags (``--cache-dir`` places the node); the command gets ``ctx`` and the ``LocalNode``."""

    @click.option(
        "--engine",
        "kind",
        type=click.Choice(["opensearch", "elasticsearch"]),
        default="opensearch",
        show_default=True,
        help="Which engine's local node.",
    )
    @engine_options(client_choice=False)
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, kind: EngineKind, **kwargs: Any) -> Any:
        from ssi_plugin.engine.local_node import LocalNode

        return command(ctx, LocalNode(engine_settings(ctx).cache_dir, kind=kind), **kwargs)

    return wrapper


@engine_group.command("start")
@click.option("--port", type=int, help="HTTP port (a free one when unset).")
@local_node_options
def start(ctx: click.Context, node: LocalNode, port: int | None) -> None:
    """Start the local node (building its launcher with Maven on first use)."""
    click.echo(f"Starting local {node.kind} node (data in {node.data_dir}) ...", err=True)
    status = node.start(port=port, progress=lambda line: click.echo(f"  {line}", err=True))
    click.echo(f"{node.kind} {status.version} ready at {status.url} (pid {status.pid})")


@engine_group.command("stop")
@local_node_options
def stop(ctx: click.Context, node: LocalNode) -> None:
    """Stop the local node."""
    status = node.stop()
    click.echo(f"Stopped local {node.kind} node (pid {status.pid}).")


@engine_group.command("status")
@local_node_options
def status(ctx: click.Context, node: LocalNode) -> None:
    """Say whether the local node runs, and where."""
    node_status = node.status()
    if node_status.running:
        version = node_status.version or "(starting)"
        click.echo(f"running: {node.kind} {version} at {node_status.url} (pid {node_status.pid}, log {node_status.log_file})")
    else:
        click.echo(f"not running (data in {node_status.data_dir})")
        ctx.exit(1)
