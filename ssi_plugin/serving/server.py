"""Running the endpoint: in the foreground for the command line, or in a thread for tests and benchmarks."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from ssi_plugin.errors import SSIError


def uvicorn_config(
    app: Any, *, host: str, port: int, access_log: bool = False, log_level: str = "info"
) -> uvicorn.Config:
    """Uvicorn settings for a proxy: no ``server`` or ``date`` header of its own, the cluster's pass through."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        access_log=access_log,
        log_level=log_level,
        server_header=False,
        date_header=False,
        lifespan="on",
    )


def serve_forever(app: Any, *, host: str, port: int, access_log: bool = False, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C or SIGTERM)."""
    uvicorn.Server(uvicorn_config(app, host=host, port=port, access_log=access_log, log_level=log_level)).run()


@contextmanager
def serve_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, startup_timeout: float = 30.0
) -> Iterator[str]:
    """Serve ``app`` from a background thread; yields its URL (a free port when ``port`` is 0), stops on exit."""
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on sockets whose proto says TCP (else +40 ms per answer).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(app, host=host, port=bound_port, log_level="warning"))
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=f"serve-{bound_port}",
        daemon=True,
    )
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not server.started:
            raise SSIError(f"the endpoint did not start on {host}:{bound_port}")
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=startup_timeout)
        sock.close()
