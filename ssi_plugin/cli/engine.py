"""``ssi-plugin engine start|stop|status``: the embedded local node, or a local cluster of several."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ssi_plugin.cli._context import engine_options, engine_settings

if TYPE_CHECKING:
    from ssi_plugin.config import EngineKind
    from ssi_plugin.engine.local_cluster import ClusterStatus

MAX_NODES = 9
"""As ``ssi_plugin.engine.local_cluster.MAX_NODES`` (not imported here: ``--help`` stays light)."""


@click.group("engine")
def engine_group() -> None:
    """Manage the embedded local search node (OpenSearch by default), or a local OpenSearch cluster."""


def local_engine_options(command: Callable[..., Any]) -> Any:
    """``--engine`` and the connection flags (``--cache-dir`` places the node); the command gets ``ctx``, the kind and the cache dir."""

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
        return command(ctx, kind, engine_settings(ctx).cache_dir, **kwargs)

    return wrapper


@engine_group.command("start")
@click.option("--port", type=int, help="HTTP port (a free one when unset; with --nodes, the first node's).")
@click.option("--nodes", type=click.IntRange(1, MAX_NODES), default=1, show_default=True,
              help="More than 1: a local OpenSearch cluster of that many nodes on loopback (512 MB heap each), "
                   "which commands given no --url then use.")
@local_engine_options
def start(ctx: click.Context, kind: EngineKind, cache_dir: Path, port: int | None, nodes: int) -> None:
    """Start the local node or cluster (building its launcher with Maven on first use)."""
    from ssi_plugin.engine.local_cluster import ClusterStatus, start_local_engine

    what = f"local {kind} node" if nodes == 1 else f"local {kind} cluster of {nodes} nodes"
    click.echo(f"Starting {what} (data in {cache_dir / kind}) ...", err=True)
    status = start_local_engine(cache_dir, kind=kind, nodes=nodes, port=port, progress=lambda line: click.echo(f"  {line}", err=True))
    if isinstance(status, ClusterStatus):
        click.echo(f"{kind} {status.version} cluster of {len(status.nodes)} nodes ready at {status.url} (health {status.health})")
        _list_members(status)
    else:
        click.echo(f"{kind} {status.version} ready at {status.url} (pid {status.pid})")


@engine_group.command("stop")
@local_engine_options
def stop(ctx: click.Context, kind: EngineKind, cache_dir: Path) -> None:
    """Stop the local node, or every node of the local cluster."""
    from ssi_plugin.engine.local_cluster import ClusterStatus, local_engine

    status = local_engine(cache_dir, kind=kind).stop()
    if isinstance(status, ClusterStatus):
        pids = ", ".join(f"{node.name} pid {node.pid}" for node in status.nodes if node.pid is not None) or "none was running"
        click.echo(f"Stopped local {kind} cluster ({pids}).")
    else:
        click.echo(f"Stopped local {kind} node (pid {status.pid}).")


@engine_group.command("status")
@local_engine_options
def status(ctx: click.Context, kind: EngineKind, cache_dir: Path) -> None:
    """Say whether the local node (or each node of the local cluster) runs, and where; exit 1 when none runs."""
    from ssi_plugin.engine.local_cluster import ClusterStatus, local_engine

    engine_status = local_engine(cache_dir, kind=kind).status()
    if isinstance(engine_status, ClusterStatus):
        running = sum(node.running for node in engine_status.nodes)
        health = f"health {engine_status.health}, {engine_status.joined} joined" if engine_status.health else "no node answers"
        click.echo(f"{'running' if running else 'not running'}: {kind} cluster, {running} of {len(engine_status.nodes)} nodes "
                   f"running ({health})")
        _list_members(engine_status)
        if not running:
            ctx.exit(1)
    elif engine_status.running:
        version = engine_status.version or "(starting)"
        click.echo(f"running: {kind} {version} at {engine_status.url} (pid {engine_status.pid}, log {engine_status.log_file})")
    else:
        click.echo(f"not running (data in {engine_status.data_dir})")
        ctx.exit(1)


def _list_members(status: ClusterStatus) -> None:
    for node in status.nodes:
        if node.running:
            click.echo(f"  {node.name}: running at {node.url or '(starting)'} (pid {node.pid}, log {node.log_file})")
        else:
            click.echo(f"  {node.name}: not running (data in {node.data_dir})")
