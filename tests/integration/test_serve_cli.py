"""``ssi-plugin serve`` end to end: the command, a generator trained for an index, and a standard client.

The generator is a tiny random model (seconds to build) whose trie holds the
index's identifiers, so whatever it writes names a real image: what is checked is
that the command wires the endpoint to the index's generator, not retrieval quality.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from opensearchpy import OpenSearch
from serve_support import serve_process
from tiny_generator import IMAGES

from ssi_plugin.engine import EngineClient
from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
from ssi_plugin.serving.searchers import IndexSearchers
from ssi_plugin.serving.server import serve_in_thread

pytestmark = [
    pytest.mark.engine,
    pytest.mark.opensearch_only(
        reason="drives the endpoint with OpenSearch's own clients; the Elasticsearch core node lacks GET / (rest-root)"
    ),
]


@pytest.fixture
def serving(engine_url: str, trained_index: tuple[str, Path]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    index, cache_dir = trained_index
    with serve_process("--upstream", engine_url, "--index", index, "--cache-dir", str(cache_dir)) as running:
        yield running


def test_serve_answers_ssi_queries_with_the_indexs_generator(
    serving: tuple[str, subprocess.Popen[str]], trained_index: tuple[str, Path]
) -> None:
    url, process = serving
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
    output = process.communicate()[0]
    assert f"Loading the generator of {index}" in output
    assert "Loading weights" not in output, "transformers' progress bars stay out of the command's output"


def test_serve_answers_a_missing_index_and_url_options_as_the_engine(
    serving: tuple[str, subprocess.Popen[str]], trained_index: tuple[str, Path], engine_url: str
) -> None:
    url, _ = serving
    index, _ = trained_index
    ssi = {"query": {"ssi": {"query": "a dog catching a frisbee"}}}

    missing = httpx.post(f"{url}/{index}-missing/_search", json=ssi)
    engine_says = httpx.post(f"{engine_url}/{index}-missing/_search", json={"query": {"match_all": {}}})
    assert missing.status_code == 404
    assert missing.json() == engine_says.json()

    ndjson = "".join(f"{json.dumps(h)}\n{json.dumps(ssi)}\n" for h in ({"index": f"{index}-missing"}, {}))
    answer = httpx.post(f"{url}/{index}/_msearch", content=ndjson, headers={"content-type": "application/x-ndjson"})
    assert answer.status_code == 200
    failed, found = answer.json()["responses"]
    assert failed == engine_says.json()
    assert found["status"] == 200 and found["hits"]["hits"]

    no_source = httpx.post(f"{url}/{index}/_search", params={"_source": "false"}, json=ssi).json()
    assert no_source["hits"]["hits"] and all("_source" not in hit for hit in no_source["hits"]["hits"])
    captions = httpx.post(f"{url}/{index}/_search", params={"_source_includes": "caption"}, json=ssi).json()
    assert {hit["_id"]: hit["_source"] for hit in captions["hits"]["hits"]} == {
        hit["_id"]: {"caption": IMAGES[hit["_id"]][1]} for hit in captions["hits"]["hits"]
    }
    ids = httpx.post(f"{url}/{index}/_search", params={"filter_path": "hits.hits._id"}, json=ssi).json()
    assert ids == {"hits": {"hits": [{"_id": hit["_id"]} for hit in no_source["hits"]["hits"]]}}


def test_an_index_without_a_generator_is_refused_and_a_missing_one_is_the_engines_404(
    engine: EngineClient, engine_url: str, index_name: str, tmp_path: Path
) -> None:
    engine.request("PUT", f"/{index_name}", body={"settings": {"number_of_replicas": 0}})
    searchers = IndexSearchers(engine, cache_dir=tmp_path)
    ssi = {"query": {"ssi": {"query": "a dog"}}}
    with serve_in_thread(SearchProxy(ProxySettings(upstream=engine_url), searchers).app) as url:
        untrained = httpx.post(f"{url}/{index_name}/_search", json=ssi)
        missing = httpx.post(f"{url}/{index_name}-missing/_search", json=ssi)
    assert untrained.status_code == 400
    assert f"run `ssi-plugin train --index {index_name}` first" in untrained.json()["error"]["reason"]
    assert missing.status_code == 404
    assert missing.json() == httpx.post(f"{engine_url}/{index_name}-missing/_search", json={}).json()
