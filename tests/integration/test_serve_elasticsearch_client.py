"""The official Elasticsearch client, unmodified, through ``serve`` on the Elasticsearch node: it checks that every
answer is Elasticsearch's (``X-Elastic-Product``) and asks for a compatibility version; ssi answers must pass both."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk
from serve_support import CAPTIONS, MatchSearcher, installed_js_script, running_proxy

from ssi_plugin.engine import EngineClient

pytestmark = pytest.mark.engine


@pytest.fixture
def proxy(engine: EngineClient, engine_url: str) -> Iterator[str]:
    if engine.kind != "elasticsearch":
        pytest.skip("Elasticsearch's own client talks to Elasticsearch only (it refuses OpenSearch by design)")
    with running_proxy(engine_url, MatchSearcher(engine_url), engine="elasticsearch") as url:
        yield url


def test_elasticsearch_py_accepts_ssi_answers_and_errors(proxy: str, index_name: str) -> None:
    client = Elasticsearch(proxy, max_retries=0)
    try:
        client.indices.create(index=index_name, settings={"number_of_replicas": 0})
        bulk(client, ({"_index": index_name, "_id": str(n), "caption": c} for n, c in enumerate(CAPTIONS)), refresh=True)
        answer = client.search(index=index_name, query={"ssi": {"query": "a dog catching a frisbee"}}, size=2)
        assert answer["hits"]["hits"][0]["_id"] == "0" and len(answer["hits"]["hits"]) == 2
        assert answer.meta.headers["x-elastic-product"] == "Elasticsearch"
        assert answer.meta.headers["content-type"].startswith("application/vnd.elasticsearch+json;compatible-with=9")
        searches = client.msearch(searches=[{"index": index_name}, {"query": {"ssi": {"query": "a cat on a sofa"}}},
                                            {"index": index_name}, {"query": {"match": {"caption": "children"}}}])
        assert [r["hits"]["hits"][0]["_id"] for r in searches["responses"]] == ["2", "3"]
        from elasticsearch import BadRequestError

        with pytest.raises(BadRequestError, match="ssi"):
            client.search(index=index_name, query={"ssi": {"query": "a dog", "nonsense": 1}})
    finally:
        client.close()
    plain = httpx.post(f"{proxy}/{index_name}/_search", json={"query": {"ssi": {"query": "a dog"}}})
    assert plain.headers["content-type"] == "application/json" and plain.headers["x-elastic-product"] == "Elasticsearch"


@pytest.mark.skipif(not (shutil.which("node") and shutil.which("npm")), reason="node and npm are needed for the JavaScript client")
def test_the_elasticsearch_javascript_client_accepts_ssi_answers(proxy: str, index_name: str, tmp_path: Path) -> None:
    script = installed_js_script(tmp_path, "elastic_client.mjs")
    client = Elasticsearch(proxy, max_retries=0)
    bulk(client, ({"_index": index_name, "_id": str(n), "caption": c} for n, c in enumerate(CAPTIONS)), refresh=True)
    client.close()
    done = subprocess.run(["node", script.name], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PROXY_URL": proxy, "INDEX": index_name})
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert (seen["ssi"]["status"], seen["ssi"]["product"]) == (200, "Elasticsearch")
    assert len(seen["ssi"]["body"]["hits"]["hits"]) == 2
    assert seen["filtered"] and all("beach" not in caption for caption in seen["filtered"])
    assert seen["refused"]["status"] == 400 and "[collapse]" in seen["refused"]["reason"]
