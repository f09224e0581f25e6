"""``ssi-plugin setup``: install the index templates and the ingest pipeline."""

from __future__ import annotations

import json

import click

from ssi_plugin.cli._context import engine_flags, engine_options, log


@click.command("setup")
@click.option("--index-pattern", "index_patterns", multiple=True, help="Index patterns of the SSI index template (default: ssi-*).")
@click.option("--dry-run", is_flag=True, help="Print the JSON that would be sent; change nothing.")
@engine_options
@click.pass_context
def setup(ctx: click.Context, index_patterns: tuple[str, ...], dry_run: bool) -> None:
    """Install or update the SSI templates and pipeline (idempotent, versioned)."""
    from ssi_plugin import SSIIndex

    with SSIIndex.connect(log=log, **engine_flags(ctx)) as cluster:
        actions = cluster.setup(index_patterns=index_patterns, dry_run=dry_run)
    for action in actions:
        changed = action.request is not None and action.installed_version is not None
        versions = f"v{action.installed_version} -> v{action.version}" if changed else f"v{action.version}"
        click.echo(f"{action.action:>12}  {action.kind:<18} {action.name}  ({versions})", err=dry_run)
        if action.note:
            click.echo(f"{'':>12}  {action.note}", err=dry_run)
        if dry_run and action.request:
            click.echo(json.dumps(action.request, indent=2))
