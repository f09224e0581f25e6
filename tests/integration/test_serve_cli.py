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
from ssi_plugin.generation.generator import build_trie, save_folder
from ssi_plugin.generation.models import tiny_model
from ssi_plugin.generation.spec import (
    GeneratorSpec,
    end_token_of,
    tokenizer_fingerprint,
)
from ssi_plugin.identifiers import SSI
from ssi_plugin.indexing.trie import default_model_dir

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="drives the endpoint with OpenSearch's own clients; the Elasticsearch core node lacks GET / (rest-root)")]

IMAGES = {
    "img-1": (
        SSI(objects=("dog", "frisbee"), actions=("catch",), scene=("park",)),
        "a dog catching a frisbee in a park",
    ),
    "img-2": (
        SSI(objects=("dog",), actions=("run",), scene=("beach",)),
        "a dog running on the beach",
    ),
    "img-3": (
        SSI(objects=("cat", "sofa"), actions=("sleep",)),
        "a cat asleep on a sofa",
    ),
    "img-4": (
        SSI(objects=("child", "ball"), actions=("kick",), scene=("street",)),
        "a child kicking a ball in the street",
    ),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def trained_index(engine: EngineClient, index_name: str, tmp_path: Path) -> tuple[str, Path]:
    """An index of SSI documents and, in a cache folder, the generator ``train`` would have left for it."""
    mappings = {
        "properties": {
            "caption": {"type": "text"},
            "ssi": {
                "properties": {
                    "id": {"type": "keyword"},
                    "concepts": {"type": "keyword"},
                }
            },
        }
    }
    engine.request(
        "PUT",
        f"/{index_name}",
        body={"settings": {"number_of_replicas": 0}, "mappings": mappings},
    )
    actions = (
        {
            "_index": index_name,
            "_id": doc_id,
            "_source": {"caption": caption, "ssi": {"id": ssi.id}},
        }
        for doc_id, (ssi, caption) in IMAGES.items()
    )
    assert all(item.ok for item in engine.bulk(actions, refresh=True))

    identifiers = [ssi.id for ssi, _ in IMAGES.values()]
    model, tokenizer = tiny_model([*identifiers, *(caption for _, caption in IMAGES.values())])
    spec = GeneratorSpec(
        architecture="seq2seq",
        end_token_id=end_token_of(tokenizer),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
    )
    trie = build_trie(tokenizer, [(ssi.id, doc_id) for doc_id, (ssi, _) in IMAGES.items()])
    cache_dir = tmp_path / "cache"
    save_folder(
        default_model_dir(cache_dir, index_name),
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        trie=trie,
    )
    return index_name, cache_dir


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
