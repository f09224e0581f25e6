"""Connection flags shared by every command, resolved once into EngineSettings."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ssi_plugin.config import EngineSettings, resolve_settings

if TYPE_CHECKING:
    from ssi_plugin.engine import EngineClient

_FLAGS = ("url", "engine", "api_key", "username", "password", "ca_certs", "verify_certs", "cache_dir")


def engine_options(command: Callable[..., Any] | None = None, *, client_choice: bool = True) -> Any:
    """Add the connection flags; unset flags fall back to the environment, then defaults.

    ``client_choice=False`` leaves out ``--engine`` for commands where that word means something else.
    """
    if command is None:
        return functools.partial(engine_options, client_choice=client_choice)
    names = _FLAGS if client_choice else tuple(n for n in _FLAGS if n != "engine")

    @click.option("--url", help="Cluster URL [env: SSI_ENGINE_URL, ELASTICSEARCH_URL, OPENSEARCH_URL]. Unset: the embedded local node.")
    @click.option("--api-key", help="API key [env: SSI_API_KEY].")
    @click.option("--user", "username", help="Basic-auth user [env: SSI_USERNAME].")
    @click.option("--password", help="Basic-auth password [env: SSI_PASSWORD].")
    @click.option("--ca-certs", type=click.Path(path_type=Path), help="CA bundle for TLS [env: SSI_CA_CERTS].")
    @click.option("--verify-certs/--no-verify-certs", default=None, help="TLS certificate verification (on by default).")
    @click.option("--cache-dir", type=click.Path(path_type=Path), help="Where the local node, models and state live [env: SSI_CACHE_DIR].")
    @click.pass_context
    @functools.wraps(command)
    def wrapper(ctx: click.Context, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in names}
        ctx.ensure_object(dict)
        ctx.obj.setdefault("engine_flags", {}).update({k: v for k, v in flags.items() if v is not None})
        return ctx.invoke(command, **kwargs)

    if client_choice:
        wrapper = click.option(
            "--engine", type=click.Choice(["opensearch", "elasticsearch"]), help="Client to use (detected when unset)."
        )(wrapper)
    return wrapper


def engine_flags(ctx: click.Context) -> dict[str, Any]:
    """The connection flags given anywhere on the command line, by their ``EngineSettings`` names."""
    root = ctx.find_root()
    return dict(root.obj.get("engine_flags", {})) if root.obj else {}


def engine_settings(ctx: click.Context) -> EngineSettings:
    """The settings of this invocation: flags given anywhere on the command line win over the environment."""
    return resolve_settings(**engine_flags(ctx))


def log(line: str) -> None:
    """A progress line: on stderr, so that stdout holds only the command's answer."""
    click.echo(line, err=True)


def connect_engine(ctx: click.Context) -> EngineClient:
    """Connect with this invocation's settings, starting the embedded node when no URL is set."""
    from ssi_plugin.engine import connect

    return connect(engine_settings(ctx), progress=log)
