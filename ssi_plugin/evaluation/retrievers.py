"""Every system under evaluation behind one small contract: ``retrieve(query, k) -> image ids``.

- ``BM25Retriever``: the engine's own ``match`` query on the caption field.
- ``SSIRetriever``: ``SSISearcher`` (generate identifiers, exact + concept
  queries, fusion); the same class runs SSI with and without RGS, which differ
  only in the trained model folder.
- ``GenerativeRetriever``: the images the trie maps the generated identifiers
  to, in beam order, without the engine: how the GRACE-style numeric-id
  baseline answers (a number carries no concept to search the index with).
- ``DenseRetriever`` (``ssi_plugin.evaluation.dense``): MiniLM sentence
  embeddings of the ingested captions, cosine similarity.
- ``DenseEngineRetriever``: the same embeddings, written by ``ingest --vectors``
  and searched by the engine's kNN search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ssi_plugin.engine.vectors import VECTOR_FIELD, knn_search
from ssi_plugin.search.options import SSIQuery

if TYPE_CHECKING:
    from ssi_plugin.embedding import MiniLMEncoder
    from ssi_plugin.engine import EngineClient
    from ssi_plugin.generation.generator import Generator
    from ssi_plugin.search import SSISearcher


@runtime_checkable
class Retriever(Protocol):
    """A named system that answers a text query with image ids, best first, at most ``k``."""

    name: str

    def retrieve(self, query: str, k: int) -> list[str]: ...


class BM25Retriever:
    """BM25 over a text field of the index (the first caption under the evaluation protocol)."""

    def __init__(self, engine: EngineClient, index: str, *, field: str = "caption", name: str = "bm25") -> None:
        self.engine = engine
        self.index = index
        self.field = field
        self.name = name

    def retrieve(self, query: str, k: int) -> list[str]:
        body = {"size": k, "_source": False, "query": {"match": {self.field: query}}}
        return [hit["_id"] for hit in self.engine.search(self.index, body)["hits"]["hits"]]


class DenseEngineRetriever:
    """The engine's kNN search over the caption vectors, the query embedded by the same encoder."""

    def __init__(self, engine: EngineClient, index: str, encoder: MiniLMEncoder, *, field: str = VECTOR_FIELD,
                 name: str = "dense-engine") -> None:
        self.engine = engine
        self.index = index
        self.encoder = encoder
        self.field = field
        self.name = name

    def retrieve(self, query: str, k: int) -> list[str]:
        body = {**knn_search(self.engine.kind, self.field, self.encoder.encode([query])[0].tolist(), k=k), "_source": False}
        return [hit["_id"] for hit in self.engine.search(self.index, body)["hits"]["hits"]]


class SSIRetriever:
    """The SSI searcher: its fused hits are the ranking; ``options``: the rest of the ``ssi`` clause (e.g. hybrid)."""

    def __init__(self, searcher: SSISearcher, *, name: str = "ssi", options: Mapping[str, Any] | None = None) -> None:
        self.searcher = searcher
        self.name = name
        self.options = dict(options or {})

    def retrieve(self, query: str, k: int) -> list[str]:
        return [hit.id for hit in self.searcher.search(SSIQuery(query=query, **self.options), size=k, source=False).hits]


class GenerativeRetriever:
    """Pure generative retrieval: the generated identifiers' images, in beam order."""

    def __init__(self, generator: Generator, *, name: str) -> None:
        self.generator = generator
        self.name = name

    def retrieve(self, query: str, k: int) -> list[str]:
        ranked: dict[str, None] = {}
        for candidate in self.generator.generate(query, k=k).candidates:
            ranked.update(dict.fromkeys(candidate.image_ids))
        return list(ranked)[:k]
