"""Text in, fused hits out: generate identifiers, query the engine once, fuse.

``SSISearcher.search`` is the Python API behind ``ssi-plugin search``;
``search_request`` answers a standard ``_search`` body holding an ``ssi``
clause with a standard search response, for ``ssi-plugin serve``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationError

from ssi_plugin.engine import EngineClient

if TYPE_CHECKING:
    from ssi_plugin.indexing.trie import IndexTrie
from ssi_plugin.errors import EngineRequestError, InputError, describe_validation_error
from ssi_plugin.generation.generator import GenerationResult, Generator
from ssi_plugin.search.fusion import fuse
from ssi_plugin.search.options import SSIQuery
from ssi_plugin.search.plan import LIST_WEIGHTS, plan_queries, planned_lists

_MIN_WINDOW = 50
_EXPLAIN_FIELDS = ["ssi.id", "ssi.concepts"]


class SearchHit(BaseModel):
    index: str
    id: str
    score: float
    source: dict[str, Any] | None = None
    identifier: str | None = None
    matched_concepts: list[str] = Field(default_factory=list)
    ranks: dict[str, int] = Field(default_factory=dict, description="1-based rank of the hit in each list that found it.")

    def as_engine_hit(self, *, explain: bool) -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": self.index, "_id": self.id, "_score": self.score}
        if self.source is not None:
            hit["_source"] = self.source
        if explain:
            hit["_ssi"] = {"identifier": self.identifier, "matched_concepts": self.matched_concepts, "ranks": self.ranks}
        return hit


class SearchResult(BaseModel):
    query: SSIQuery
    hits: list[SearchHit]
    total: int
    generation: GenerationResult
    lists: dict[str, int] = Field(default_factory=dict, description="Documents each list found (0: the list was empty "
                                  "or had nothing to ask, e.g. no identifier was generated for an unplaceable query).")
    generate_ms: float
    engine_ms: float
    took_ms: float

    @property
    def empty_lists(self) -> list[str]:
        return [name for name, found in self.lists.items() if not found]

    def as_engine_response(self) -> dict[str, Any]:
        """The hits in the engine's own response format, so any search client can read them; with ``explain`` also
        an ``_ssi`` section: the generated identifiers, what each list found, and why a list was empty."""
        response: dict[str, Any] = {
            "took": round(self.took_ms),
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": self.total, "relation": "eq"},
                "max_score": self.hits[0].score if self.hits else None,
                "hits": [hit.as_engine_hit(explain=self.query.explain) for hit in self.hits],
            },
        }
        if self.query.explain:
            response["_ssi"] = {
                "candidates": [{"identifier": c.identifier, "score": c.score} for c in self.generation.candidates],
                "lists": self.lists, "empty_lists": self.empty_lists, "warnings": self.generation.warnings,
            }
        return response


class SSISearcher:
    """Searches one index (or alias) with one generator whose trie holds that index's identifiers.

    Opened with ``open``, the trie is the index's own (``IndexTrie``): read from the index (or resumed
    from the trie cache), and with ``poll`` kept in step by a background thread until ``close``.
    """

    def __init__(self, engine: EngineClient, generator: Generator, *, index: str, trie: IndexTrie | None = None) -> None:
        self.engine = engine
        self.generator = generator
        self.index = index
        self.trie = trie

    @classmethod
    def open(cls, engine: EngineClient, index: str, *, model_dir: Path, cache_dir: Path | None = None,
             reader: EngineClient | None = None, poll: float | None = None) -> SSISearcher:
        """The generator of ``model_dir`` over the identifiers ``index`` holds now.

        ``reader`` reads the index for the trie (default ``engine``: searches may run with a caller's credentials,
        the trie is the server's own view); ``poll`` seconds between reads of what changed (None: read once).
        """
        from transformers import AutoTokenizer

        from ssi_plugin.generation.generator import build_trie
        from ssi_plugin.generation.spec import GeneratorSpec
        from ssi_plugin.indexing.trie import IndexTrie

        reader = reader or engine
        if not reader.exists(f"/{index}"):
            raise InputError(f"index {index!r} does not exist on {reader.url}")
        spec = GeneratorSpec.load(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        trie = IndexTrie(reader, index, build=lambda pairs: build_trie(tokenizer, pairs),
                         tokenizer_fingerprint=spec.tokenizer_fingerprint, cache_dir=cache_dir)
        generator = Generator.load(model_dir, trie=trie.view)
        trie.on_swap = generator.use_trie
        if generator.trie is not trie.view:  # a merge finished in between
            generator.use_trie(trie.view)
        if poll is not None:
            trie.start(poll)
        return cls(engine, generator, index=index, trie=trie)

    def close(self) -> None:
        """Stop keeping the trie in step (a no-op for a searcher over a fixed trie)."""
        if self.trie is not None:
            self.trie.stop()

    def search(
        self,
        query: SSIQuery | str,
        *,
        size: int = 10,
        offset: int = 0,
        source: bool | list[str] | dict[str, Any] = True,
        headers: Mapping[str, str] | None = None,
    ) -> SearchResult:
        options = query if isinstance(query, SSIQuery) else SSIQuery(query=query)
        if size < 0 or offset < 0:
            raise InputError(f"size and from must be >= 0, got size={size}, from={offset}")
        started = time.perf_counter()
        generation = self.generator.generate(options.query, k=options.k)
        generated = time.perf_counter()

        bodies = plan_queries(generation, options, window=max(_MIN_WINDOW, offset + size))
        for body in bodies.values():
            body["_source"] = source
            body["docvalue_fields"] = _EXPLAIN_FIELDS
        responses = self.engine.msearch(self.index, list(bodies.values()), headers=headers) if bodies else []
        searched = time.perf_counter()

        rankings: dict[str, list[tuple[str, float]]] = {}
        found: dict[str, dict[str, Any]] = {}
        for name, response in zip(bodies, responses, strict=True):
            if "error" in response:
                error = response["error"]
                reason = error.get("reason", error) if isinstance(error, dict) else error
                raise EngineRequestError("POST", f"/{self.index}/_msearch", int(response.get("status", 500)),
                                         f"{name} list: {reason}", response)
            rankings[name] = [(hit["_id"], float(hit["_score"] or 0.0)) for hit in response["hits"]["hits"]]
            for hit in response["hits"]["hits"]:
                found.setdefault(hit["_id"], hit)

        fused = fuse(rankings, options.fusion, weights=LIST_WEIGHTS)
        lists = {name: len(rankings.get(name, [])) for name in planned_lists(options)}
        ranks = {name: {doc_id: rank for rank, (doc_id, _) in enumerate(ranking, start=1)} for name, ranking in rankings.items()}
        hits = [
            self._hit(found[doc_id], score, generation, {name: r[doc_id] for name, r in ranks.items() if doc_id in r})
            for doc_id, score in fused[offset : offset + size]
        ]
        finished = time.perf_counter()
        return SearchResult(
            query=options,
            hits=hits,
            total=len(fused),
            generation=generation,
            lists=lists,
            generate_ms=(generated - started) * 1000,
            engine_ms=(searched - generated) * 1000,
            took_ms=(finished - started) * 1000,
        )

    def search_request(self, index: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """Answer a ``_search`` body whose ``query`` is an ``ssi`` clause, in the engine's response format."""
        if index not in (self.index, "", "_all"):
            raise InputError(f"this endpoint serves SSI search on index {self.index!r}, not {index!r}")
        clause = body.get("query", {}).get("ssi")
        try:
            options = SSIQuery.model_validate(clause)
        except ValidationError as exc:
            raise InputError(f"[ssi] query is malformed: {describe_validation_error(exc)}") from None
        result = self.search(
            options,
            size=int(body.get("size", 10)),
            offset=int(body.get("from", 0)),
            source=body.get("_source", True),
            headers=headers,
        )
        return result.as_engine_response()

    def _hit(self, hit: dict[str, Any], score: float, generation: GenerationResult, ranks: dict[str, int]) -> SearchHit:
        fields = hit.get("fields", {})
        identifier = (fields.get("ssi.id") or [None])[0]
        concepts = set(fields.get("ssi.concepts", []))
        return SearchHit(
            index=hit["_index"],
            id=hit["_id"],
            score=score,
            source=hit.get("_source"),
            identifier=identifier,
            matched_concepts=[c for c in generation.concepts if c in concepts],
            ranks=ranks,
        )
