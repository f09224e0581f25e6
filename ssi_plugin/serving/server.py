"""Running the endpoint: in the foreground for the command line, or in a thread for tests and benchmarks."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

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


def serve_workers(build: Callable[[], Any], *, workers: int, host: str, port: int, access_log: bool = False,
                  log_level: str = "info") -> None:
    """Serve until interrupted from ``workers`` processes that share one listening socket, each with the app ``build``
    makes (pickled to it: ``functools.partial(create_app, ...)``).

    One process answers ssi queries on about one core, however many it has: the Python between the model's passes
    holds the interpreter lock. Each worker loads its own generator (the tries' files are memory-mapped, so shared).
    Workers are spawned, not forked (torch's thread pools do not survive a fork); one that dies is started again.
    A worker that cannot build its app (an error of ours: no such index, no generator) stops them all, as a single
    process would fail at start, instead of being restarted forever.
    """
    if workers < 2:
        raise ValueError(f"serve_workers runs 2 or more workers, got {workers}: serve_forever runs one")
    from uvicorn.supervisors import Multiprocess

    config = uvicorn_config(_WorkerApp(build), host=host, port=port, access_log=access_log, log_level=log_level)
    config.factory, config.workers = True, workers
    supervisor = Multiprocess(config, sockets=[config.bind_socket()])
    supervisor.run()
    if any(process.exitcode == STARTUP_FAILURE for process in supervisor.processes):
        raise SSIError("the workers could not start (their error is above)")


@dataclass(frozen=True)
class _WorkerApp:
    """A worker's app factory: an error of ours while building it ends the worker as a failed start."""

    build: Callable[[], Any]

    def __call__(self) -> Any:
        try:
            return self.build()
        except SSIError as exc:
            logging.getLogger("uvicorn.error").error("%s", exc)
            sys.exit(STARTUP_FAILURE)


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
