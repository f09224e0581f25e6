"""The ``ssi-plugin`` command: a runbook over the Python API.

Each command group lives in its own module and is registered here. Heavy
imports (torch, transformers, engine clients) happen inside commands, so
``ssi-plugin --help`` stays instant.
"""

from __future__ import annotations

import sys

import click

from ssi_plugin import __version__
from ssi_plugin.cli._context import engine_options
from ssi_plugin.cli.annotate import annotate_command
from ssi_plugin.cli.data import data_group
from ssi_plugin.cli.demo import demo_command
from ssi_plugin.cli.engine import engine_group
from ssi_plugin.cli.eval import eval_command
from ssi_plugin.cli.ingest import ingest_command
from ssi_plugin.cli.reindex import reindex_command
from ssi_plugin.cli.search import search_command
from ssi_plugin.cli.serve import serve_command
from ssi_plugin.cli.serve_model import serve_model_command
from ssi_plugin.cli.setup import setup
from ssi_plugin.cli.train import train_command
from ssi_plugin.errors import SSIError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ssi-plugin")
@engine_options
def cli() -> None:
    """Generative text-to-image retrieval with Structured Semantic Identifiers.

    With no cluster URL (--url, SSI_ENGINE_URL, ELASTICSEARCH_URL or
    OPENSEARCH_URL) every command uses the embedded local OpenSearch node.
    Generators answer queries in int8 (twice as fast on a CPU);
    SSI_PRECISION=float32 loads them in the arithmetic they were trained in.
    """


cli.add_command(engine_group)
cli.add_command(annotate_command)
cli.add_command(serve_model_command)
cli.add_command(data_group)
cli.add_command(setup)
cli.add_command(ingest_command)
cli.add_command(search_command)
cli.add_command(reindex_command)
cli.add_command(serve_command)
cli.add_command(train_command)
cli.add_command(eval_command)
cli.add_command(demo_command)


def main() -> None:
    """Entry point: one line per failure, a documented exit code, never a traceback."""
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int):  # ctx.exit(n) is returned, not raised, when standalone_mode is off
            sys.exit(code)
    except (click.exceptions.Abort, KeyboardInterrupt):  # click turns Ctrl-C into Abort; the job's workers have stopped
        click.echo("Interrupted: stopped by Ctrl-C.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except SSIError as exc:
        click.echo(f"{type(exc).__name__}: {exc}", err=True)
        sys.exit(exc.exit_code)
