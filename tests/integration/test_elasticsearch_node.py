"""The local Elasticsearch core node, driven by the unmodified elasticsearch-py 9 client.

``elasticsearch_url`` (tests/conftest.py) is one real Elasticsearch 9 node (server
jar + transport-netty4 from Maven Central) for the test session, shared with the
Elasticsearch leg of the other integration tests, or ``SSI_ELASTICSEARCH_URL`` when
set. The tests cover what ssi-plugin needs from the core (templates, mappings,
bulk, the SSI queries, aliases, point in time + search_after) and pin down what the
core lacks, as listed in integration/elasticsearch/README.md.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import ApiError, Elasticsearch

from ssi_plugin.engine.local_node import NodeStatus

pytestmark = pytest.mark.engine

IMAGES = {
    "img-1": {"id": "objects: dog, frisbee | actions: catch, jump | scene: park", "objects": ["dog", "frisbee"], "scene": ["park"]},
    "img-2": {"id": "objects: dog, ball | actions: run | scene: beach", "objects": ["dog", "ball"], "scene": ["beach"]},
    "img-3": {"id": "objects: cat | actions: sleep | scene: sofa", "objects": ["cat"], "scene": ["sofa"]},
    "img-4": {"id": "objects: child, frisbee | actions: throw | scene: park", "objects": ["child", "frisbee"], "scene": ["park"]},
}


@pytest.fixture(scope="session")
def es(elasticsearch_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(elasticsearch_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def index(es: Elasticsearch) -> Iterator[str]:
    """A fresh name per test; indices, templates and aliases under it are deleted afterwards."""
    name = f"test-es-{uuid.uuid4().hex[:10]}"
    yield name
    es.options(ignore_status=404).indices.delete_index_template(name=name)
    es.options(ignore_status=404).cluster.delete_component_template(name=name)
    created = list(es.indices.get(index=f"{name}*", expand_wildcards="all"))  # Elasticsearch refuses wildcard deletes
    if created:
        es.indices.delete(index=",".join(created))


def index_images(es: Elasticsearch, index: str) -> None:
    operations: list[dict[str, Any]] = []
    for image_id, ssi in IMAGES.items():
        operations += [{"index": {"_index": index, "_id": image_id}}, {"ssi": ssi, "caption": f"caption of {image_id}"}]
    response = es.bulk(operations=operations, refresh=True)
    assert response["errors"] is False


def hit_ids(response: Any) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_local_node_is_elasticsearch_9(es: Elasticsearch, elasticsearch_node: NodeStatus | None) -> None:
    if elasticsearch_node is None:
        pytest.skip("SSI_ELASTICSEARCH_URL points at an external cluster")
    assert elasticsearch_node.kind == "elasticsearch"
    assert elasticsearch_node.version is not None and elasticsearch_node.version.startswith("9.")
    health = es.cluster.health()  # the client itself rejects a server that is not Elasticsearch
    assert health.meta.headers["x-elastic-product"] == "Elasticsearch"
    assert es.cluster.stats()["nodes"]["versions"] == [elasticsearch_node.version]


def engine_command(command: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    """``ssi-plugin engine COMMAND --engine elasticsearch`` in a fresh process, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "ssi_plugin", "engine", command, "--engine", "elasticsearch", "--cache-dir", str(cache_dir)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_engine_commands_start_report_and_stop_the_node(tmp_path: Path) -> None:
    started = engine_command("start", tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert started.stdout.startswith("elasticsearch 9.")
        url = started.stdout.split(" ready at ")[1].split()[0]
        health = httpx.get(f"{url}/_cluster/health", timeout=10)
        assert health.headers["x-elastic-product"] == "Elasticsearch"
        status = engine_command("status", tmp_path)
        assert status.returncode == 0 and f"at {url}" in status.stdout
        again = engine_command("start", tmp_path)
        assert again.returncode != 0 and "already running" in again.stderr.strip().splitlines()[-1]
    finally:
        stopped = engine_command("stop", tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert engine_command("status", tmp_path).returncode == 1
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/_cluster/health", timeout=5)


def test_templates_shape_new_indices(es: Elasticsearch, index: str) -> None:
    es.cluster.put_component_template(
        name=index,
        template={"mappings": {"properties": {"ssi": {"properties": {"id": {"type": "keyword"}, "objects": {"type": "keyword"}}}}}},
    )
    es.indices.put_index_template(
        name=index,
        index_patterns=[f"{index}-*"],
        composed_of=[index],
        template={"settings": {"number_of_replicas": 0}},
        priority=500,
    )
    es.indices.create(index=f"{index}-a")
    mapping = es.indices.get_mapping(index=f"{index}-a")[f"{index}-a"]["mappings"]["properties"]["ssi"]["properties"]
    assert mapping == {"id": {"type": "keyword"}, "objects": {"type": "keyword"}}
    assert es.cluster.health(index=f"{index}-a", wait_for_status="green", timeout="30s")["status"] == "green"


def test_ssi_queries_find_the_right_images(es: Elasticsearch, index: str) -> None:
    es.indices.create(
        index=index,
        settings={"number_of_replicas": 0},
        mappings={"properties": {"ssi": {"properties": {f: {"type": "keyword"} for f in ("id", "objects", "scene")}}}},
    )
    index_images(es, index)
    exact = es.search(index=index, query={"term": {"ssi.id": IMAGES["img-3"]["id"]}})
    assert hit_ids(exact) == ["img-3"]
    concepts = es.search(index=index, query={"terms": {"ssi.objects": ["frisbee", "ball"]}})
    assert sorted(hit_ids(concepts)) == ["img-1", "img-2", "img-4"]
    fused = es.search(
        index=index,
        query={
            "bool": {
                "should": [
                    {"term": {"ssi.id": {"value": IMAGES["img-4"]["id"], "boost": 10}}},
                    {"terms": {"ssi.objects": ["dog", "frisbee"]}},
                    {"term": {"ssi.scene": "park"}},
                ]
            }
        },
    )
    ranked = hit_ids(fused)
    assert ranked[0] == "img-4"
    assert "img-3" not in ranked


def test_alias_moves_atomically(es: Elasticsearch, index: str) -> None:
    for suffix in ("v1", "v2"):
        es.indices.create(index=f"{index}-{suffix}", settings={"number_of_replicas": 0})
    es.indices.put_alias(index=f"{index}-v1", name=index)
    es.indices.update_aliases(
        actions=[{"remove": {"index": f"{index}-v1", "alias": index}}, {"add": {"index": f"{index}-v2", "alias": index}}]
    )
    assert list(es.indices.get_alias(name=index)) == [f"{index}-v2"]


def test_point_in_time_pages_every_document(es: Elasticsearch, index: str) -> None:
    es.indices.create(index=index, settings={"number_of_replicas": 0})
    es.bulk(operations=[op for n in range(25) for op in ({"index": {"_index": index, "_id": str(n)}}, {"n": n})], refresh=True)
    pit = es.open_point_in_time(index=index, keep_alive="1m")["id"]
    seen: list[str] = []
    after: list[Any] | None = None
    try:
        while True:
            page = es.search(
                pit={"id": pit, "keep_alive": "1m"}, size=7, sort=[{"_shard_doc": "asc"}], **({"search_after": after} if after else {})
            )
            pit = page["pit_id"]
            if not page["hits"]["hits"]:
                break
            seen += hit_ids(page)
            after = page["hits"]["hits"][-1]["sort"]
    finally:
        es.close_point_in_time(id=pit)
    assert sorted(seen, key=int) == [str(n) for n in range(25)]


MISSING_FROM_CORE: dict[str, Callable[[Elasticsearch, str], Any]] = {
    "GET / (rest-root)": lambda es, index: es.info(),
    "_reindex (reindex)": lambda es, index: es.reindex(source={"index": index}, dest={"index": f"{index}-copy"}),
    "set processor (ingest-common)": lambda es, index: es.ingest.put_pipeline(id=index, processors=[{"set": {"field": "a", "value": 1}}]),
    "painless script (lang-painless)": lambda es, index: es.search(
        index=index, query={"script_score": {"query": {"match_all": {}}, "script": {"source": "1"}}}
    ),
}


@pytest.mark.parametrize("feature", sorted(MISSING_FROM_CORE))
def test_the_core_lacks_what_its_readme_says(es: Elasticsearch, elasticsearch_node: NodeStatus | None, index: str, feature: str) -> None:
    if elasticsearch_node is None:
        pytest.skip("a full Elasticsearch distribution has these modules")
    es.indices.create(index=index, settings={"number_of_replicas": 0})
    with pytest.raises(ApiError) as failure:
        MISSING_FROM_CORE[feature](es, index)
    assert failure.value.meta.status in (400, 405)


def test_ingest_framework_runs_pipelines_without_processors(es: Elasticsearch, index: str) -> None:
    """The ingest API is in the server: an empty pipeline is accepted and applied on bulk."""
    es.ingest.put_pipeline(id=index, processors=[])
    try:
        es.indices.create(index=index, settings={"number_of_replicas": 0})
        response = es.bulk(operations=[{"index": {"_index": index, "_id": "1"}}, {"a": 1}], pipeline=index, refresh=True)
        assert response["errors"] is False
        assert es.get(index=index, id="1")["_source"] == {"a": 1}
    finally:
        es.ingest.delete_pipeline(id=index)
