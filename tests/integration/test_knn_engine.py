"""Approximate nearest-neighbour search on each engine's real node.

OpenSearch: the k-NN plugin (``org.opensearch.plugin:opensearch-knn``) runs in the
local node as a classpath plugin, Lucene engine only: the faiss and nmslib native
libraries are not published, so every ``knn_vector`` field here names
``"engine": "lucene"`` (the default, faiss, would fail the node) and the index sets
``index.knn: true`` (the plugin refuses method parameters without it).
Elasticsearch: ``dense_vector`` with ``index: true`` is in the core server, searched
with the top-level ``knn`` section.

Each leg builds the same four-vector index and asks the same questions; the
wrong-dimension tests pin down each engine's own error text, which ssi-plugin maps.
"""

from __future__ import annotations

from typing import Any

import pytest

from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.vectors import vector_dims
from ssi_plugin.errors import EngineRequestError

pytestmark = pytest.mark.engine

DIMENSION = 4

VECTORS = {
    "east": ([1.0, 0.0, 0.0, 0.0], "x"),
    "east-by-north": ([0.9, 0.1, 0.0, 0.0], "y"),
    "north": ([0.0, 1.0, 0.0, 0.0], "y"),
    "up": ([0.0, 0.0, 1.0, 0.0], "x"),
}
QUERY = [1.0, 0.05, 0.0, 0.0]  # nearest (cosine): east, then east-by-north

WRONG_QUERY_REASON = {
    "opensearch": "Query vector has invalid dimension: 3. Dimension should be: 4",
    "elasticsearch": "The query vector has a different number of dimensions [3] than the document vectors [4].",
}
WRONG_DOCUMENT_REASON = {
    "opensearch": "Vector dimension mismatch. Expected: 4, Given: 3",
    "elasticsearch": "has a different number of dimensions [3] than defined in the mapping [4]",
}


def vector_index_body(kind: str) -> dict[str, Any]:
    """An index with one cosine vector field ``vec`` and a keyword ``tag``, for ``kind``."""
    if kind == "opensearch":
        vec = {
            "type": "knn_vector",
            "dimension": DIMENSION,
            "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"},
        }
        settings: dict[str, Any] = {"index.knn": True, "number_of_shards": 1, "number_of_replicas": 0}
    else:
        vec = {"type": "dense_vector", "dims": DIMENSION, "index": True, "similarity": "cosine"}
        settings = {"number_of_shards": 1, "number_of_replicas": 0}
    return {"settings": settings, "mappings": {"properties": {"vec": vec, "tag": {"type": "keyword"}}}}


def knn_search_body(kind: str, vector: list[float], *, k: int = 10, filter: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``k`` nearest documents to ``vector`` (among those matching ``filter``), in each engine's syntax."""
    if kind == "opensearch":
        clause: dict[str, Any] = {"vector": vector, "k": k}
        if filter is not None:
            clause["filter"] = filter
        return {"query": {"knn": {"vec": clause}}, "size": k, "_source": False}
    knn: dict[str, Any] = {"field": "vec", "query_vector": vector, "k": k, "num_candidates": 10 * k}
    if filter is not None:
        knn["filter"] = filter
    return {"knn": knn, "size": k, "_source": False}


@pytest.fixture
def vector_index(engine: EngineClient, engine_kind: str, index_name: str) -> str:
    engine.request("PUT", f"/{index_name}", body=vector_index_body(engine_kind))
    docs = [{"_index": index_name, "_id": doc_id, "_source": {"vec": vec, "tag": tag}} for doc_id, (vec, tag) in VECTORS.items()]
    assert all(result.ok for result in engine.bulk(docs, refresh=True))
    return index_name


def hit_ids(response: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in response["hits"]["hits"]]


def test_knn_search_ranks_the_nearest_vector_first(engine: EngineClient, engine_kind: str, vector_index: str) -> None:
    ids = hit_ids(engine.search(vector_index, knn_search_body(engine_kind, QUERY)))
    assert ids[:2] == ["east", "east-by-north"]
    assert sorted(ids) == sorted(VECTORS)

    assert hit_ids(engine.search(vector_index, knn_search_body(engine_kind, QUERY, k=1)))[0] == "east"


def test_knn_search_with_a_filter_ranks_within_the_matching_documents(engine: EngineClient, engine_kind: str, vector_index: str) -> None:
    response = engine.search(vector_index, knn_search_body(engine_kind, QUERY, filter={"term": {"tag": "y"}}))
    assert hit_ids(response) == ["east-by-north", "north"]


def test_a_query_vector_of_the_wrong_length_is_a_400_naming_the_dimension(
    engine: EngineClient, engine_kind: str, vector_index: str
) -> None:
    with pytest.raises(EngineRequestError) as refused:
        engine.search(vector_index, knn_search_body(engine_kind, [1.0, 0.0, 0.0]))
    assert refused.value.status == 400
    error = refused.value.body["error"]
    assert error["type"] == "search_phase_execution_exception"
    (cause,) = error["root_cause"]
    assert cause["type"] == "query_shard_exception"
    assert cause["reason"] == f"failed to create query: {WRONG_QUERY_REASON[engine_kind]}"
    assert WRONG_QUERY_REASON[engine_kind] in str(refused.value)


def test_a_document_vector_of_the_wrong_length_is_refused_naming_the_dimension(
    engine: EngineClient, engine_kind: str, vector_index: str
) -> None:
    (result,) = engine.bulk([{"_index": vector_index, "_id": "short", "_source": {"vec": [1.0, 0.0, 0.0]}}])
    assert not result.ok and result.status == 400
    assert result.error is not None
    expected_type = "mapper_parsing_exception" if engine_kind == "opensearch" else "document_parsing_exception"
    assert result.error["type"] == expected_type
    assert result.error["caused_by"]["type"] == "illegal_argument_exception"
    assert WRONG_DOCUMENT_REASON[engine_kind] in result.error["caused_by"]["reason"]


def test_a_vector_fields_dimension_is_read_before_the_index_shards_have_started(engine: EngineClient, engine_kind: str,
                                                                                index_name: str) -> None:
    """As on a node just restarted: the field-mapping API asks the shards and answered 404 (``demo`` failed)."""
    body = vector_index_body(engine_kind)
    body["settings"]["index.routing.allocation.require._name"] = "no-such-node"  # the primary stays unassigned
    body["mappings"]["properties"]["nested"] = {"properties": {"vec": body["mappings"]["properties"]["vec"]}}
    engine.request("PUT", f"/{index_name}", params={"wait_for_active_shards": "0"}, body=body)
    assert vector_dims(engine, index_name, "vec") == DIMENSION
    assert vector_dims(engine, index_name, "nested.vec") == DIMENSION
    assert vector_dims(engine, index_name, "tag.vec") is None and vector_dims(engine, index_name, "absent") is None
