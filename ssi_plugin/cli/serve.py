"""``ssi-plugin serve``: the standard search API in front of a cluster, with ``ssi`` queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ssi_plugin.cli._context import engine_options, engine_settings
from ssi_plugin.cli._image_query_options import image_annotator_options

if TYPE_CHECKING:
    from ssi_plugin.search.image_query import QueryImageReader

DEFAULT_PORT = 8080


@click.command("serve")
@click.option(
    "--upstream",
    help="Cluster every request is forwarded to [default: --url / SSI_ENGINE_URL, else the embedded local node].",
)
@click.option(
    "--index",
    help="Serve ssi queries on this index (or alias) only; its generator loads at start.",
)
@click.option(
    "--model",
    "model_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Generator folder for --index (default: the one trained for it).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 for all).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
@click.option(
    "--max-body-size",
    default="10MiB",
    show_default=True,
    help="Largest _search/_msearch body read here (e.g. 512KiB, 100MB; 413 above). Other bodies (_bulk...) stream through.",
)
@click.option(
    "--timeout",
    "request_timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the cluster's answer (504 after).",
)
@click.option(
    "--ssi-concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="ssi queries answered at the same time (each runs the generator).",
)
@click.option(
    "--access-log/--no-access-log",
    default=False,
    show_default=True,
    help="Log every request.",
)
@image_annotator_options
@engine_options
@click.pass_context
def serve_command(
    ctx: click.Context,
    upstream: str | None,
    index: str | None,
    model_dir: Path | None,
    host: str,
    port: int,
    max_body_size: str,
    request_timeout: float,
    ssi_concurrency: int,
    access_log: bool,
    images: QueryImageReader,
) -> None:
    """Serve the standard search API: requests pass through to the cluster, ssi queries are answered here.

    Existing clients point at this endpoint instead of the cluster. A _search or
    _msearch body whose query is {"ssi": {"query": "a dog catching a frisbee"}}
    is answered by the index's generator; everything else reaches the cluster
    unchanged, credentials included. The search page is at /_ssi/.
    """
    from pydantic import ValidationError

    from ssi_plugin.engine import connect
    from ssi_plugin.errors import ConfigError, describe_validation_error
    from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
    from ssi_plugin.serving.search_page import PAGE_PATH, SearchPage
    from ssi_plugin.serving.searchers import IndexSearchers
    from ssi_plugin.serving.server import serve_forever
    from ssi_plugin.serving.thumbnails import Thumbnails

    if upstream is not None:  # --upstream is --url under the name a proxy's users look for
        ctx.find_root().ensure_object(dict)
        ctx.find_root().obj.setdefault("engine_flags", {})["url"] = upstream
    settings = engine_settings(ctx)
    engine = connect(settings, progress=lambda line: click.echo(line, err=True))
    try:
        proxy_settings = ProxySettings(
            upstream=engine.url,
            max_body_size=max_body_size,  # type: ignore[arg-type]  # ByteSize parses "10MiB"
            connect_timeout=settings.connect_timeout,
            request_timeout=request_timeout,
            verify_certs=settings.verify_certs,
            ca_certs=settings.ca_certs,
            ssi_concurrency=ssi_concurrency,
            engine=engine.info.kind,
        )
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    searchers = IndexSearchers(engine, cache_dir=settings.cache_dir, index=index, model_dir=model_dir, images=images)
    if index is not None:
        click.echo(f"Loading the generator of {index} ...", err=True)
        searchers.preload()
    page = SearchPage(Thumbnails(engine, index=index), default_index=lambda: searchers.default_index)
    proxy = SearchProxy(proxy_settings, searchers, health=searchers.health, page=page)
    served = f"ssi queries on {index}" if index else "ssi queries on any index with a trained generator"
    click.echo(
        f"Serving the search API of {engine.kind} {engine.info.version} at {engine.url} on http://{host}:{port} ({served})",
        err=True,
    )
    click.echo(f"Search page: http://{host}:{port}{PAGE_PATH}", err=True)
    try:
        serve_forever(proxy.app, host=host, port=port, access_log=access_log)
    finally:
        searchers.close()
        engine.close()
