"""``ssi-plugin serve``: the standard search API in front of a cluster, with ``ssi`` queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ssi_plugin.cli._context import engine_flags, engine_options, log
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
    help="ssi queries answered at the same time; those waiting for the generator decode together [default: 32].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes answering requests, each with its own generator: one process uses about one core for ssi queries.",
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
    ssi_concurrency: int | None,
    workers: int,
    access_log: bool,
    images: QueryImageReader,
) -> None:
    """Serve the standard search API: requests pass through to the cluster, ssi queries are answered here.

    Existing clients point at this endpoint instead of the cluster. A _search or
    _msearch body whose query is {"ssi": {"query": "a dog catching a frisbee"}}
    is answered by the index's generator; everything else reaches the cluster
    unchanged, credentials included. The search page is at /_ssi/.
    """
    import functools

    from ssi_plugin import create_app
    from ssi_plugin.serving.search_page import PAGE_PATH
    from ssi_plugin.serving.server import serve_forever, serve_workers

    flags = engine_flags(ctx)
    if upstream is not None:  # --upstream is --url under the name a proxy's users look for
        flags["url"] = upstream
    build = functools.partial(create_app, index=index, generator_dir=model_dir, max_body_size=max_body_size,
                              request_timeout=request_timeout, ssi_concurrency=ssi_concurrency, images=images, log=log,
                              **flags)
    if workers == 1:
        app = build()
        log(f"Listening on http://{host}:{port}")
        log(f"Search page: http://{host}:{port}{PAGE_PATH}")
        serve_forever(app, host=host, port=port, access_log=access_log)
    else:
        log(f"Starting {workers} workers on http://{host}:{port} (search page: {PAGE_PATH})")
        serve_workers(build, workers=workers, host=host, port=port, access_log=access_log)
