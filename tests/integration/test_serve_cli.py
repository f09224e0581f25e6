"""``ssi-plugin serve`` end to end: the command, a generator trained for an index, and a standard client.

The generator is a tiny random model (seconds to build) whose trie holds the
index's identifiers, so whatever it writes names a real image: what is checked is
that the command wires the endpoint to the index's generator, not retrieval quality.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opensearchpy import OpenSearch

from ssi_plugin.engine import EngineClient
from tiny_generator import IMAGES, index_with_generator

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="drives the endpoint with OpenSearch's own clients; the Elasticsearch core node lacks GET / (rest-root)")]

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def trained_index(engine: EngineClient, index_name: str, tmp_path: Path) -> tuple[str, Path]:
    """An index of SSI documents and, in a cache folder, the generator ``train`` would have left for it."""
    index_with_generator(engine, index_name, tmp_path / "cache")
    return index_name, tmp_path / "cache"


@pytest.fixture
def serve_process(engine_url: str, trained_index: tuple[str, Path]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    index, cache_dir = trained_index
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "ssi_plugin",
        "serve",
        "--upstream",
        engine_url,
        "--index",
        index,
        "--port",
        str(port),
        "--cache-dir",
        str(cache_dir),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and process.poll() is None:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        if process.poll() is not None or time.monotonic() >= deadline:
            process.kill()
            pytest.fail(f"ssi-plugin serve did not start:\n{process.communicate()[0]}")
        yield url, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_answers_ssi_queries_with_the_indexs_generator(
    serve_process: tuple[str, subprocess.Popen[str]], trained_index: tuple[str, Path]
) -> None:
    url, process = serve_process
    index, _ = trained_index
    client = OpenSearch(hosts=[url], max_retries=0)

    answer = client.search(
        index=index,
        body={
            "query": {"ssi": {"query": "a dog catching a frisbee", "explain": True}},
            "size": 3,
        },
    )
    hits = answer["hits"]["hits"]
    assert 1 <= len(hits) <= 3
    for hit in hits:
        assert hit["_index"] == index
        assert hit["_id"] in IMAGES
        assert hit["_ssi"]["identifier"] == IMAGES[hit["_id"]][0].id
    assert [h["_score"] for h in hits] == sorted((h["_score"] for h in hits), reverse=True)

    normal = client.search(index=index, body={"query": {"match": {"caption": "cat"}}})
    assert [hit["_id"] for hit in normal["hits"]["hits"]] == ["img-3"]
    client.close()

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) in (0, 130)
