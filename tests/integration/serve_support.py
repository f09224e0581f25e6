"""Shared by the ``serve`` tests: the endpoint in a thread or as the command, and a small real ssi searcher for it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from ssi_plugin.errors import EngineRequestError
from ssi_plugin.search.request import SSISearchRequest
from ssi_plugin.serving.proxy import ProxySettings, SearchProxy, SSISearch
from ssi_plugin.serving.server import serve_in_thread

CAPTIONS = [
    "a dog catching a frisbee in the park",
    "a brown dog running on the beach",
    "a cat sleeping on a red sofa",
    "two children playing football",
    "a dog and a cat looking out of a window",
]


class MatchSearcher:
    """The searcher stand-in: the ssi clause becomes a match query on ``caption``, run on the real node."""

    def __init__(self, engine_url: str) -> None:
        self.engine_url = engine_url
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []

    def __call__(self, index: str, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        self.calls.append((index, body, dict(headers)))
        request = SSISearchRequest.from_body(body)
        assert request is not None
        match = {"match": {"caption": request.clause.query}}
        search = {
            **body,
            "query": {"bool": {"must": [match], "filter": list(request.list_filters), "must_not": list(request.must_not)}},
        }
        response = httpx.post(f"{self.engine_url}/{index}/_search", json=search, headers=dict(headers))
        if response.status_code != 200:
            raise EngineRequestError(
                "POST",
                f"/{index}/_search",
                response.status_code,
                response.text,
                response.json(),
            )
        return response.json()


@contextmanager
def running_proxy(upstream: str, searcher: SSISearch, **settings: Any) -> Iterator[str]:
    with serve_in_thread(SearchProxy(ProxySettings(upstream=upstream, **settings), searcher).app) as url:
        yield url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_within(url: str, process: subprocess.Popen[Any], seconds: float, *, interval: float) -> bool:
    """Whether ``url`` answers an HTTP request within ``seconds`` while ``process``, which serves it, still runs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(url, timeout=1)
            return True
        except httpx.TransportError:
            time.sleep(interval)
    return False


def serve_command(*options: str) -> list[str]:
    """``ssi-plugin serve OPTIONS`` as a command line for this interpreter."""
    return [sys.executable, "-m", "ssi_plugin", "serve", *options]


@contextmanager
def serve_process(*options: str, startup_timeout: float = 120) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``ssi-plugin serve OPTIONS`` on a free port, once it answers; its output (stdout and stderr) is kept for the test."""
    port = free_port()
    process = subprocess.Popen(serve_command(*options, "--port", str(port)), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        if not answers_within(url, process, startup_timeout, interval=0.2):
            process.kill()
            raise AssertionError(f"ssi-plugin serve did not start:\n{process.communicate()[0]}")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def without_took(answer: dict[str, Any]) -> dict[str, Any]:
    answer = {k: v for k, v in answer.items() if k != "took"}
    if "responses" in answer:
        answer["responses"] = [without_took(r) for r in answer["responses"]]
    return answer


JS_PROJECT = Path(__file__).resolve().parents[1] / "js"
"""``tests/js``: the npm packages of the JavaScript checks (a lock file pins them) and the check scripts."""


def installed_js_script(folder: Path, script: str) -> Path:
    """``script`` of ``tests/js`` in ``folder`` with the locked npm packages installed beside it (the tree stays clean)."""
    for name in ("package.json", "package-lock.json", script):
        shutil.copy(JS_PROJECT / name, folder / name)
    installed = subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=folder, capture_output=True,
                               text=True, timeout=300, check=False)
    if installed.returncode != 0:
        raise AssertionError(f"npm ci failed in {folder}:\n{installed.stderr}")
    return folder / script
