"""Dense vectors inside the engine: the field each engine maps, the kNN search each runs, and their checks.

Elasticsearch has ``dense_vector`` and the top-level ``knn`` search in its core
server. OpenSearch has them through the k-NN plugin (``knn_vector``, the ``knn``
query): ssi-plugin maps its fields with the Lucene HNSW engine only, because the
plugin's faiss and nmslib engines need native libraries that a node built from
Maven Central does not have (and that load only when such a field is first
used), and the Lucene engine is in every distribution of the plugin.

Both engines score a cosine match as ``(1 + cosine) / 2``; ``cosine_of`` turns
that back into the cosine, so that fusion sees how far apart two hits really are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ssi_plugin.embedding import DIMS
from ssi_plugin.engine.client import EngineClient
from ssi_plugin.errors import InputError

VECTOR_FIELD = "caption_vector"
"""The field ``ingest --vectors`` writes: the all-MiniLM-L6-v2 embedding of the caption."""
KNN_PLUGIN = "org.opensearch.knn.plugin.KNNPlugin"
_TYPES = {"elasticsearch": "dense_vector", "opensearch": "knn_vector"}


def field_mapping(kind: str, dims: int = DIMS) -> dict[str, Any]:
    """A cosine-similarity vector field of ``dims`` dimensions, indexed for kNN search."""
    if kind == "opensearch":
        return {"type": "knn_vector", "dimension": dims,
                "method": {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}}
    return {"type": "dense_vector", "dims": dims, "index": True, "similarity": "cosine"}


def index_settings(kind: str) -> dict[str, Any]:
    """What an index needs, from its creation, to hold vector fields (OpenSearch refuses HNSW parameters otherwise)."""
    return {"index.knn": True} if kind == "opensearch" else {}


def knn_search(kind: str, field: str, vector: Sequence[float], *, k: int, filters: Sequence[dict[str, Any]] = (),
               must_not: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """A search body for the ``k`` nearest documents that pass ``filters`` and none of ``must_not``.

    The filter is applied during the graph search (both engines' Lucene kNN), so ``k`` hits come back
    whenever ``k`` documents pass it.
    """
    restriction = {"bool": {"filter": list(filters), "must_not": list(must_not)}} if filters or must_not else None
    vector = [float(x) for x in vector]
    if kind == "opensearch":
        knn: dict[str, Any] = {"vector": vector, "k": k}
        if restriction:
            knn["filter"] = restriction
        return {"size": k, "query": {"knn": {field: knn}}}
    top: dict[str, Any] = {"field": field, "query_vector": vector, "k": k, "num_candidates": min(10_000, max(100, 2 * k))}
    if restriction:
        top["filter"] = restriction
    return {"size": k, "knn": top}


def cosine_of(score: float) -> float:
    """The cosine of a kNN hit from its engine score."""
    return 2.0 * score - 1.0


def vector_dims(engine: EngineClient, index: str, field: str) -> int | None:
    """The dimension of ``field`` in every index ``index`` names; None when one of them lacks it.

    Read from each index's whole mapping, which the cluster state holds: the field-mapping API asks the index's
    shards, and answers 404 until they have started (as on a node just restarted, where ``demo`` failed)."""
    answer = engine.request("GET", f"/{index}/_mapping") or {}
    found: dict[str, int] = {}
    for name, held in answer.items():
        leaf = _mapped(held.get("mappings", {}), field)
        if leaf is None:
            return None
        if leaf.get("type") not in _TYPES.values():
            raise InputError(f"field [{field}] of index [{name}] is of type [{leaf.get('type')}], not a vector field")
        found[name] = int(leaf.get("dims") or leaf.get("dimension") or 0)
    if len(set(found.values())) > 1:
        raise InputError(f"field [{field}] has different dimensions across [{index}]: {found}")
    return next(iter(found.values()), None)


def _mapped(mappings: dict[str, Any], field: str) -> dict[str, Any] | None:
    """The mapping of ``field`` (a dotted path through object fields) in an index's ``mappings``; None if absent."""
    node: dict[str, Any] | None = mappings
    for part in field.split("."):
        node = (node or {}).get("properties", {}).get(part)
    return node


def ensure_vector_field(engine: EngineClient, index: str, *, field: str = VECTOR_FIELD, dims: int = DIMS) -> None:
    """Map ``field`` on ``index`` when it lacks it (an index created before the cluster had vectors); refuse one of
    another dimension."""
    held = vector_dims(engine, index, field)
    if held == dims:
        return
    if held is not None:
        raise InputError(f"field [{field}] of index [{index}] has {held} dimensions, the caption vectors have {dims}")
    from ssi_plugin.engine.capabilities import capabilities

    kind = capabilities(engine).vectors
    if kind is None:
        raise InputError(f"{engine.kind} at {engine.url} has no vector fields (OpenSearch needs its k-NN plugin)")
    if kind == "opensearch" and not _knn_enabled(engine, index):
        raise InputError(f"index [{index}] was created without index.knn: true, which OpenSearch needs from an index's "
                         f"creation to hold vectors: reindex it into a new index with --vectors")
    engine.request("PUT", f"/{index}/_mapping", body={"properties": {field: field_mapping(kind, dims)}})


def _knn_enabled(engine: EngineClient, index: str) -> bool:
    answer = engine.request("GET", f"/{index}/_settings", params={"filter_path": "*.settings.index.knn"}) or {}
    knn = [str(held.get("settings", {}).get("index", {}).get("knn")).lower() for held in answer.values()]
    return bool(knn) and all(value == "true" for value in knn)
