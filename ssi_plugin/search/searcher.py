"""Text in, fused hits out: generate identifiers, ask the engine for every list in one request, fuse.

A query that arrives alone asks the lists of its own words while the generator runs, and the generator's lists
after it: the second core is idle then (``SSISearcher._ask_early``). Among other queries every list goes in one
request, since both cores are busy with them.

``SSISearcher.search`` is the Python API behind ``ssi-plugin search``;
``search_request`` answers a standard ``_search`` body holding an ``ssi``
clause (``ssi_plugin.search.request`` reads it) with a standard search
response, for ``ssi-plugin serve``.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ssi_plugin.annotation.base import Annotation
from ssi_plugin.embedding import shared_encoder
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.vectors import cosine_of
from ssi_plugin.errors import EngineRequestError, InputError, SSIError, searches_would_fail
from ssi_plugin.generation.generator import GenerationResult, Generator, candidate_probabilities
from ssi_plugin.identifiers import identifier_words, query_concepts, query_words
from ssi_plugin.indexing.documents import DOC_ID_FIELD, ids_in_doc_values
from ssi_plugin.search.coverage import EXPLAINED_LISTS, QueryWords, by_words_explained
from ssi_plugin.search.fusion import fused_shares, ranked
from ssi_plugin.search.image_query import QueryImageReader, image_generation
from ssi_plugin.search.meaning import MEANING_CANDIDATES, IdentifierMeanings
from ssi_plugin.search.options import SSIQuery
from ssi_plugin.search.plan import (
    LIST_WEIGHTS,
    PAST_THE_GENERATOR,
    DenseLeg,
    generated_lists,
    list_weights,
    looks_past_the_generator,
    plan_queries,
    planned_lists,
    query_lists,
)
from ssi_plugin.search.related import ConceptVocabulary
from ssi_plugin.search.request import SSISearchRequest

if TYPE_CHECKING:
    from ssi_plugin.indexing.trie import IndexTrie
    from ssi_plugin.trie import TrieView

_MIN_WINDOW = 50
_EXPLAIN_FIELDS = ("ssi.id", "ssi.concepts")
"""Doc values every list asks for: each hit's identifier and concepts, for ``explain``."""
_ENGINE_HIT_KEYS = ("_version", "_seq_no", "_primary_term", "fields")


def _first_cause(error: Any) -> str:
    """What went wrong, as the engine says it first: "all shards failed" is only a wrapper around a shard's reason."""
    if not isinstance(error, dict):
        return str(error)
    causes = error.get("root_cause") or []
    return str(causes[0].get("reason") if causes and isinstance(causes[0], dict) and causes[0].get("reason")
               else error.get("reason", error))


def _status_of(answer: Mapping[str, Any]) -> int:
    """The status of one failed search of an ``_msearch``; a query text too long for the engine's clause limit is
    the request's fault (400, as Elasticsearch 8 says it), though OpenSearch answers it with 500."""
    error = answer.get("error")
    causes = (error.get("root_cause") or []) if isinstance(error, dict) else []
    if any(isinstance(cause, dict) and cause.get("type") == "too_many_clauses" for cause in causes):
        return 400
    return int(answer.get("status", 500))


def _list_score(name: str, hit: Mapping[str, Any]) -> float:
    """A hit's score in its list; the dense list's is its cosine (the engines' ``(1 + cos) / 2`` crowds every hit
    near the best, which fusion by score over the best would read as all equally good)."""
    score = float(hit["_score"] or 0.0)
    return max(0.0, cosine_of(score)) if name == "dense" else score


class _InFlight:
    """How many queries a searcher is answering (entered for each)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> None:
        with self._lock:
            self.count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self.count -= 1


def _labels(options: SSIQuery) -> dict[str, str]:
    """How a list's failure is named where its name alone would not say what was asked."""
    return {"dense": f"dense leg on field [{options.dense_field}]"}


def _for_ranking(bodies: dict[str, dict[str, Any]], request: SSISearchRequest, *, ids_in_doc_values: bool) -> dict[str, dict[str, Any]]:
    """The lists' bodies as they are asked: read for their ranking (what hits carry is asked of the page: ``_page``);
    ``ids_in_doc_values``: each hit's id read from ``DOC_ID_FIELD``, no stored field at all."""
    for body in bodies.values():
        body["_source"] = False
        if ids_in_doc_values:
            body["docvalue_fields"], body["stored_fields"] = [*_EXPLAIN_FIELDS, DOC_ID_FIELD], "_none_"
        else:
            body["docvalue_fields"] = list(_EXPLAIN_FIELDS)
            body.pop("stored_fields", None)  # asked again after a hit without its id
        if request.timeout is not None:
            body["timeout"] = request.timeout
    return bodies


def _with_ids(responses: Mapping[str, dict[str, Any]]) -> bool:
    """Give each hit asked without stored fields its ``_id`` from its ``DOC_ID_FIELD``; false if one has none."""
    for response in responses.values():
        for hit in response["hits"]["hits"]:
            if "_id" not in hit:
                held = hit.get("fields", {}).get(DOC_ID_FIELD)
                if not held:
                    return False
                hit["_id"] = held[0]
    return True


def _rankings(responses: Mapping[str, dict[str, Any]]) -> tuple[dict[str, list[tuple[str, float]]], dict[str, dict[str, Any]]]:
    """Each list's ``(document id, score)`` ranking, and every document found (its first hit)."""
    rankings = {name: [(hit["_id"], _list_score(name, hit)) for hit in response["hits"]["hits"]]
                for name, response in responses.items()}
    found: dict[str, dict[str, Any]] = {}
    for response in responses.values():
        for hit in response["hits"]["hits"]:
            found.setdefault(hit["_id"], hit)
    return rankings, found


def _by_words_explained(rankings: dict[str, list[tuple[str, float]]], found: Mapping[str, Mapping[str, Any]],
                        words: QueryWords) -> tuple[dict[str, list[tuple[str, float]]], dict[str, list[str]]]:
    """``by_words_explained`` over the documents found, and each one's identifier words."""
    concepts_of = {doc_id: identifier_words(_identifier_of(hit) or "") for doc_id, hit in found.items()}
    return by_words_explained(rankings, concepts_of, words), concepts_of


def _leading(rankings: Mapping[str, list[tuple[str, float]]], found: Mapping[str, Mapping[str, Any]], options: SSIQuery,
             weights: Mapping[str, float]) -> dict[str, str | None]:
    """The identifier of each image the meaning list scores: the first ``MEANING_CANDIDATES`` of the lists fused."""
    leading = ranked(fused_shares(rankings, options.fusion, weights=weights, absolute=EXPLAINED_LISTS))[:MEANING_CANDIDATES]
    return {doc_id: _identifier_of(found[doc_id]) for doc_id, _ in leading}


def _identifier_of(hit: Mapping[str, Any]) -> str | None:
    """A hit's SSI (its ``ssi.id`` doc value, which every list and the page ask for)."""
    return (hit.get("fields", {}).get("ssi.id") or [None])[0]


class SearchHit(BaseModel):
    index: str
    id: str
    score: float
    source: dict[str, Any] | None = None
    identifier: str | None = None
    matched_concepts: list[str] = Field(default_factory=list)
    ranks: dict[str, int] = Field(default_factory=dict, description="1-based rank of the hit in each list that found it.")
    shares: dict[str, float] = Field(default_factory=dict, description="Each list's share of the fused score.")
    engine: dict[str, Any] = Field(default_factory=dict, description="What the engine's hit carried as asked "
                                   "(fields, _version, _seq_no, _primary_term, highlight).")

    def as_engine_hit(self, *, explain: bool, explanation: bool = False, fusion: str = "linear") -> dict[str, Any]:
        hit: dict[str, Any] = {"_index": self.index, "_id": self.id, "_score": self.score, **self.engine}
        if self.source is not None:
            hit["_source"] = self.source
        if explain:
            hit["_ssi"] = {"identifier": self.identifier, "matched_concepts": self.matched_concepts, "ranks": self.ranks,
                           "shares": self.shares}
        if explanation:
            hit["_explanation"] = {
                "value": self.score, "description": f"ssi: {fusion} fusion of the lists that found the document",
                "details": [{"value": share, "description": f"{name} list, rank {self.ranks[name]}", "details": []}
                            for name, share in self.shares.items()],
            }
        return hit


class SearchResult(BaseModel):
    query: SSIQuery
    hits: list[SearchHit]
    total: int
    total_relation: Literal["eq", "gte"] = "eq"
    track_total_hits: bool | int = True
    timed_out: bool = False
    explanation: bool = Field(default=False, description="Each hit carries the engine's `_explanation` (body-level explain).")
    aggregations: dict[str, Any] | None = None
    generation: GenerationResult
    query_image: Annotation | None = Field(default=None, description="The annotator's reading of the query image.")
    lists: dict[str, int] = Field(default_factory=dict, description="Documents each list found (0: the list was empty "
                                  "or had nothing to ask, e.g. no identifier was generated for an unplaceable query; "
                                  "or, for related and bm25, was set aside for a generator sure of the image that "
                                  "explains the query best).")
    generate_ms: float
    engine_ms: float
    took_ms: float

    @property
    def empty_lists(self) -> list[str]:
        return [name for name, found in self.lists.items() if not found]

    def as_engine_response(self) -> dict[str, Any]:
        """The hits in the engine's own response format, so any search client can read them; with ``explain`` also
        an ``_ssi`` section: the generated identifiers, what each list found, and why a list was empty."""
        hits: dict[str, Any] = {
            "max_score": self.hits[0].score if self.hits else None,
            "hits": [hit.as_engine_hit(explain=self.query.explain, explanation=self.explanation, fusion=self.query.fusion)
                     for hit in self.hits],
        }
        if self.track_total_hits is not False:
            threshold = self.track_total_hits if type(self.track_total_hits) is int else None
            capped = threshold is not None and self.total > threshold
            value = threshold if capped else self.total
            hits = {"total": {"value": value, "relation": "gte" if capped else self.total_relation}, **hits}
        response: dict[str, Any] = {
            "took": round(self.took_ms),
            "timed_out": self.timed_out,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": hits,
        }
        if self.aggregations is not None:
            response["aggregations"] = self.aggregations
        if self.query.explain:
            response["_ssi"] = {
                "candidates": [{"identifier": c.identifier, "score": c.score} for c in self.generation.candidates],
                "lists": self.lists, "empty_lists": self.empty_lists, "warnings": self.generation.warnings,
            }
            if self.query_image is not None:
                response["_ssi"]["query_image"] = {"identifier": self.query_image.ssi.id,
                                                   "rationale": self.query_image.rationale}
        return response


class SSISearcher:
    """Searches one index (or alias) with one generator whose trie holds that index's identifiers.

    Opened with ``open``, the trie is the index's own (``IndexTrie``): read from the index (or resumed
    from the trie cache), and with ``poll`` kept in step by a background thread until ``close``.
    ``images`` reads the query images (default: the offline annotator, loaded on the first one).
    ``vocabulary`` holds the vectors of the trie's concepts for the related-concepts list (default: embedded
    on the first text query); ``meanings`` those of the identifiers found, for the meaning list (default: read by the
    generator's encoder).
    """

    def __init__(self, engine: EngineClient, generator: Generator, *, index: str, trie: IndexTrie | None = None,
                 images: QueryImageReader | None = None, vocabulary: ConceptVocabulary | None = None,
                 meanings: IdentifierMeanings | None = None) -> None:
        self.engine = engine
        self.generator = generator
        self.index = index
        self.trie = trie
        self.images = images or QueryImageReader()
        self.vocabulary = vocabulary or ConceptVocabulary()
        self.meanings = meanings or IdentifierMeanings(generator.embed)
        self._embedder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssi-embed")  # its thread starts on first use
        self._early = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssi-early")
        self._in_flight = _InFlight()
        self.ids_in_doc_values = False
        """Every document holds its id in ``DOC_ID_FIELD`` (``ids_in_doc_values``): the lists ask for no stored field.
        ``open`` finds out, and again whenever the index changes; a hit found without one turns it off meanwhile."""

    @classmethod
    def open(cls, engine: EngineClient, index: str, *, model_dir: Path, cache_dir: Path | None = None,
             poll: float | None = None, images: QueryImageReader | None = None) -> SSISearcher:
        """The generator of ``model_dir`` over the identifiers ``index`` holds now.

        ``engine``'s own credentials read the index for the trie, the searcher's own view (also in the background,
        every ``poll`` seconds; None: read once); a 401/403 there is an ``EngineAuthError``, never a missing index.
        """
        from transformers import AutoTokenizer

        from ssi_plugin.generation.generator import build_trie
        from ssi_plugin.generation.spec import GeneratorSpec
        from ssi_plugin.indexing.trie import IndexTrie

        if not engine.exists(f"/{index}"):
            raise InputError(f"index {index!r} does not exist on {engine.url}")
        spec = GeneratorSpec.load(model_dir)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        trie = IndexTrie(engine, index, build=lambda pairs: build_trie(tokenizer, pairs),
                         tokenizer_fingerprint=spec.tokenizer_fingerprint, cache_dir=cache_dir)
        generator = Generator.load(model_dir, trie=trie.view)
        vocabulary = ConceptVocabulary()
        searcher = cls(engine, generator, index=index, trie=trie, images=images, vocabulary=vocabulary)
        searcher.ids_in_doc_values = ids_in_doc_values(engine, index)

        def swapped(view: TrieView) -> None:
            generator.use_trie(view)
            vocabulary.follow_in_background(view)
            searcher.ids_in_doc_values = ids_in_doc_values(engine, index)

        trie.on_swap = swapped
        if generator.trie is not trie.view:  # a merge finished in between
            generator.use_trie(trie.view)
        # Before any query, so that every searcher of an index answers alike from its first query on.
        vocabulary.follow_in_background(generator.trie).result()
        query_concepts("red bicycles leaning on street lamps")  # loads the lemma tables, a second the first query would wait
        if poll is not None:
            trie.start(poll)
        return searcher

    def close(self) -> None:
        """Stop keeping the trie in step (a no-op for a searcher over a fixed trie) and the embedding threads."""
        if self.trie is not None:
            self.trie.stop()
        self.vocabulary.close()
        self._embedder.shutdown(wait=False)
        self._early.shutdown(wait=False)

    def search(
        self,
        query: SSIQuery | str,
        *,
        size: int = 10,
        offset: int = 0,
        source: bool | list[str] | dict[str, Any] = True,
        headers: Mapping[str, str] | None = None,
    ) -> SearchResult:
        options = query if isinstance(query, SSIQuery) else SSIQuery(query=query)  # an image query is an SSIQuery
        if size < 0 or offset < 0:
            raise InputError(f"size and from must be >= 0, got size={size}, from={offset}")
        request = SSISearchRequest(clause=options, size=size, offset=offset, hit_parts={"_source": source})
        return self.run(request, headers=headers)

    def search_request(self, index: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        """Answer a ``_search`` body whose query holds an ``ssi`` clause, in the engine's response format.

        Made for a client: every search it asks of the cluster carries the credentials in ``headers`` (even none)
        and never the engine's own.
        """
        if index not in (self.index, "", "_all"):
            raise InputError(f"this endpoint serves SSI search on index {self.index!r}, not {index!r}")
        request = SSISearchRequest.from_body(body)
        if request is None:
            raise InputError("the search body holds no [ssi] clause")
        return self.run(request, headers=headers).as_engine_response()

    def run(self, request: SSISearchRequest, *, headers: Mapping[str, str] | None = None) -> SearchResult:
        """Generate, ask every list (filtered as the request says), fuse, then what the rest of the body asks.

        While the trie's last read (or a query's lists) failed as searches would (no engine answering, or an engine
        that cannot search the index yet), the engine is asked first (one small search): during an outage or a
        recovery a query fails at once with the engine's error, as it would after its generation, instead of
        waiting its turn at the generator. A query still waiting for its turn when such a failure is found (by
        another query or a read of the trie) fails then, with that error.
        """
        with self._in_flight:
            return self._run(request, headers, alone=self._in_flight.count == 1)

    def _run(self, request: SSISearchRequest, headers: Mapping[str, str] | None, *, alone: bool) -> SearchResult:
        """``run``; a query ``alone`` (no other in flight) asks the query's own lists while the generator runs."""
        known = self.trie.unavailable if self.trie is not None else None
        if known is not None:
            self._msearch({"probe": {"size": 0, "track_total_hits": False}}, headers, labels={"probe": "availability check"})
        options = request.clause
        started = time.perf_counter()
        embedding = self._embed(options)
        words = self._words(options)
        window = max(_MIN_WINDOW, request.offset + request.size)
        asked_early = self._ask_early(request, window, embedding, words, headers) if alone else None
        query_image = self.images.annotate(options.image, caption=options.query) if options.image is not None else None
        generation = (image_generation(query_image, caption=options.query) if query_image is not None
                      else self.generator.generate(options.query, k=options.k,  # type: ignore[arg-type]  # text, when no image
                                                   abandon=lambda: self._found_unavailable(since=known)))
        dense = embedding.result() if embedding is not None else None
        explained = words.result() if words is not None else None
        query_vector = self._query_vector(options, generation)
        generated = time.perf_counter()

        if asked_early is None:
            bodies = plan_queries(generation, options, window=window, filters=request.list_filters,
                                  must_not=request.must_not, dense=dense, words=explained)
            responses = self._lists(bodies, request, headers, labels=_labels(options))
        else:
            bodies = generated_lists(generation, window=window, filters=request.list_filters, must_not=request.must_not)
            responses = {**self._lists(bodies, request, headers), **asked_early.result()}
        if dense is not None and not responses["dense"]["hits"]["hits"]:
            self._require_vectors(dense.field, headers)
        rankings, found = _rankings(responses)
        if explained is not None:
            rankings, concepts_of = _by_words_explained(rankings, found, explained)
            if not looks_past_the_generator(candidate_probabilities(generation.candidates), explained, concepts_of.values()):
                rankings = {name: ranking for name, ranking in rankings.items() if name not in PAST_THE_GENERATOR}
        exact_found = [_identifier_of(hit) for hit in responses["exact"]["hits"]["hits"]] if "exact" in responses else []
        weights = list_weights(generation, exact_found, dense=dense is not None)
        if query_vector is not None:
            leading = _leading(rankings, found, options, weights)
            rankings["meaning"] = self.meanings.ranking(query_vector, leading)
        shares = fused_shares(rankings, options.fusion, weights=weights, absolute=EXPLAINED_LISTS)
        fused = ranked(shares)
        if request.min_score is not None:
            fused = [(doc_id, score) for doc_id, score in fused if score >= request.min_score]
        aggregations, kept = self._aggregate_and_post_filter(request, [doc_id for doc_id, _ in fused], headers)
        fused = [(doc_id, score) for doc_id, score in fused if doc_id in kept]
        page = fused[request.offset : request.offset + request.size]
        contents, page_timed_out = self._page(request, [found[doc_id] for doc_id, _ in page], headers)
        searched = time.perf_counter()

        ranks = {name: {doc_id: rank for rank, (doc_id, _) in enumerate(ranking, start=1)} for name, ranking in rankings.items()}
        asked = request.hit_parts
        user_fields = [*asked.get("fields", []), *asked.get("docvalue_fields", [])]
        hits = [
            self._hit(contents.get((found[doc_id]["_index"], doc_id), found[doc_id]), score, generation,
                      {name: r[doc_id] for name, r in ranks.items() if doc_id in r}, shares[doc_id], user_fields)
            for doc_id, score in page
        ]
        finished = time.perf_counter()
        return SearchResult(
            query=options,
            hits=hits,
            total=len(fused),
            total_relation="gte" if any(len(ranking) >= window for ranking in rankings.values()) else "eq",
            track_total_hits=request.track_total_hits,
            timed_out=page_timed_out or any(response.get("timed_out") for response in responses.values()),
            explanation=request.explain,
            aggregations=aggregations,
            generation=generation,
            query_image=query_image,
            lists={name: len(rankings.get(name, [])) for name in planned_lists(options)},
            generate_ms=(generated - started) * 1000,
            engine_ms=(searched - generated) * 1000,
            took_ms=(finished - started) * 1000,
        )

    def _ask_early(self, request: SSISearchRequest, window: int, embedding: Future[DenseLeg] | None,
                   words: Future[QueryWords] | None, headers: Mapping[str, str] | None) -> Future[dict[str, dict[str, Any]]]:
        """The query's own lists (``query_lists``), asked on a thread of their own while the generator runs, and the
        phrases of the images leading them embedded for the meaning list: on an idle machine the engine's answer and
        those phrases (new ones cost 2-3 ms each) are ready when the generation is."""
        options = request.clause

        def ask() -> dict[str, dict[str, Any]]:
            dense = embedding.result() if embedding is not None else None
            explained = words.result() if words is not None else None
            bodies = query_lists(options, window=window, filters=request.list_filters, must_not=request.must_not,
                                 dense=dense, words=explained)
            responses = self._lists(bodies, request, headers, labels=_labels(options))
            if explained is not None:  # words are read where the meaning list is (``SSIQuery.reads_words``)
                rankings, found = _rankings(responses)
                rankings, _ = _by_words_explained(rankings, found, explained)
                self.meanings.read_ahead(_leading(rankings, found, options, LIST_WEIGHTS).values())
            return responses

        return self._early.submit(ask)

    def _found_unavailable(self, *, since: SSIError | None) -> SSIError | None:
        """A failure searches would meet too, found since ``since`` was the one known."""
        found = self.trie.unavailable if self.trie is not None else None
        return found if found is not None and found is not since else None

    def _lists(self, bodies: dict[str, dict[str, Any]], request: SSISearchRequest, headers: Mapping[str, str] | None, *,
               labels: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """Each list's answer, every hit with its ``_id``: read from doc values while every document holds it there,
        else (and again for a query that found a document without it) as a stored field."""
        if self.ids_in_doc_values:
            responses = self._msearch(_for_ranking(bodies, request, ids_in_doc_values=True), headers, labels=labels)
            if _with_ids(responses):
                return responses
            self.ids_in_doc_values = False  # until the index changes again (``open``)
        return self._msearch(_for_ranking(bodies, request, ids_in_doc_values=False), headers, labels=labels)

    def _msearch(self, bodies: Mapping[str, dict[str, Any]], headers: Mapping[str, str] | None, *,
                 labels: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
        """Each named search's answer; an engine error in one is an ``EngineRequestError`` in the engine's shape,
        its reason led by the search's name (or its label)."""
        if not bodies:
            return {}
        try:
            answers = self.engine.msearch(self.index, list(bodies.values()), headers=headers)
            for name, answer in zip(bodies, answers, strict=True):
                if "error" in answer:
                    error = answer["error"]
                    reason = f"{(labels or {}).get(name, name)}: {_first_cause(error)}"
                    body = {**answer, "error": {**error, "reason": reason}} if isinstance(error, dict) else answer
                    raise EngineRequestError("POST", f"/{self.index}/_msearch", _status_of(answer), reason, body)
        except SSIError as exc:
            if self.trie is not None and searches_would_fail(exc):  # the next queries ask first, until a read succeeds
                self.trie.failing(exc)
            raise
        return dict(zip(bodies, answers, strict=True))

    def _embed(self, options: SSIQuery) -> Future[DenseLeg] | None:
        """The dense leg's query vector, made on another thread while the generator runs (both release the GIL)."""
        field = options.dense_field
        if field is None:
            return None
        if options.query_vector is not None:
            done: Future[DenseLeg] = Future()
            done.set_result(DenseLeg(self.engine.kind, field, options.query_vector))
            return done
        text = options.query
        assert text is not None, "SSIQuery asks for text or a query vector for a dense leg"
        return self._embedder.submit(lambda: DenseLeg(self.engine.kind, field, shared_encoder().encode([text])[0].tolist()))

    def _words(self, options: SSIQuery) -> Future[QueryWords] | None:
        """The query's words and the concepts near those no identifier holds (the terms and related lists), found on
        another thread while the generator runs; none with a dense leg (which takes their place) or without text."""
        text = options.query
        if text is None or not options.reads_words:
            return None
        view = self.generator.trie

        def read() -> QueryWords:
            stands_for = query_words(text)
            return QueryWords(stands_for, self.vocabulary.related(view, stands_for))

        return self._embedder.submit(read)

    def _query_vector(self, options: SSIQuery, generation: GenerationResult) -> Sequence[float] | None:
        """What the query text means, for the meaning list: read in its decoding, or by the generator's encoder for
        a query it did not decode (an image's caption); none where the terms lists are not asked."""
        if options.query is None or not options.reads_words:
            return None
        if generation.query_vector is not None:
            return generation.query_vector
        return self.generator.embed([options.query])[0]

    def _require_vectors(self, field: str, headers: Mapping[str, str] | None) -> None:
        """An empty dense list over an index that holds no vector is a mistake to report, not an SSI-only answer."""
        body = {"size": 0, "track_total_hits": 1, "query": {"exists": {"field": field}}}
        if not self._msearch({"vectors": body}, headers)["vectors"]["hits"]["total"]["value"]:
            raise InputError(f"index [{self.index}] holds no vector in field [{field}]: ingest or reindex it with --vectors "
                             f"(or name a vector field it has) to search it with a dense leg")

    def _aggregate_and_post_filter(self, request: SSISearchRequest, ids: list[str],
                                   headers: Mapping[str, str] | None) -> tuple[dict[str, Any] | None, set[str]]:
        """The engine's aggregations over ``ids`` (every document the search matched), and those of ``ids`` that pass
        ``post_filter``: one round trip, only when the body asks for either."""
        matched = {"ids": {"values": ids}}
        bodies: dict[str, dict[str, Any]] = {}
        if request.aggs is not None:
            bodies["aggregations"] = {"size": 0, "track_total_hits": False, "query": matched, "aggs": request.aggs}
        if request.post_filter is not None and ids:
            bodies["post_filter"] = {"size": len(ids), "_source": False, "track_total_hits": False,
                                     "query": {"bool": {"filter": [matched, request.post_filter]}}}
        answers = self._msearch(bodies, headers)
        aggregations = answers["aggregations"].get("aggregations", {}) if "aggregations" in answers else None
        if request.post_filter is None:
            return aggregations, set(ids)
        kept = {hit["_id"] for hit in answers["post_filter"]["hits"]["hits"]} if ids else set()
        return aggregations, kept

    def _page(self, request: SSISearchRequest, hits: list[dict[str, Any]],
              headers: Mapping[str, str] | None) -> tuple[dict[tuple[str, str], dict[str, Any]], bool]:
        """The page's documents as the body asks hits to carry them (``_source`` unless it says false, ``fields``,
        ``version``, highlights...), by (index, id), from one search of their ids; and whether it timed out.

        Asked of every list instead, each list's whole window came back with its sources: for a default body on the
        demo index (five lists over 22 photos with caption vectors) about a megabyte of JSON per query. A body that
        wants no more than ids (``"_source": false`` and nothing else) costs no search.
        """
        if not hits or (request.hit_parts == {"_source": False} and request.highlight is None):
            return {}, False
        parts = {name: value for name, value in request.hit_parts.items() if not (name == "_source" and value is False)}
        body: dict[str, Any] = {"size": len(hits), "track_total_hits": False, "query": {"ids": {"values": [hit["_id"] for hit in hits]}},
                                "_source": request.hit_parts.get("_source", True), **parts,
                                "docvalue_fields": [*parts.get("docvalue_fields", []), *_EXPLAIN_FIELDS]}
        if request.timeout is not None:
            body["timeout"] = request.timeout
        if request.highlight is not None:
            body["highlight"] = self._highlight(request)
        answer = self._msearch({"page": body}, headers)["page"]
        return {(hit["_index"], hit["_id"]): hit for hit in answer["hits"]["hits"]}, bool(answer.get("timed_out"))

    @staticmethod
    def _highlight(request: SSISearchRequest) -> dict[str, Any]:
        """The body's ``highlight``, against the query text unless it gives a ``highlight_query``."""
        assert request.highlight is not None
        highlight = dict(request.highlight)
        fields = highlight.get("fields", {})
        names = list(fields) if isinstance(fields, dict) else [name for entry in fields for name in entry]
        if "highlight_query" not in highlight:
            if request.clause.query is None:
                raise InputError("[highlight] of an image search needs a [highlight_query]: there is no query text")
            highlight["highlight_query"] = {"multi_match": {"query": request.clause.query, "fields": names or ["*"]}}
        return highlight

    def _hit(self, hit: dict[str, Any], score: float, generation: GenerationResult, ranks: dict[str, int],
             shares: dict[str, float], user_fields: Sequence[Any]) -> SearchHit:
        fields = hit.get("fields", {})
        identifier = _identifier_of(hit)
        concepts = set(fields.get("ssi.concepts", []))
        engine = {key: hit[key] for key in _ENGINE_HIT_KEYS if key in hit}
        asked = [entry["field"] if isinstance(entry, dict) else entry for entry in user_fields]
        shown = {name: values for name, values in fields.items()
                 if name not in (*_EXPLAIN_FIELDS, DOC_ID_FIELD) or any(fnmatch.fnmatchcase(name, pattern) for pattern in asked)}
        if shown:
            engine["fields"] = shown
        else:
            engine.pop("fields", None)
        if "highlight" in hit:
            engine["highlight"] = hit["highlight"]
        return SearchHit(
            index=hit["_index"],
            id=hit["_id"],
            score=score,
            source=hit.get("_source"),
            identifier=identifier,
            matched_concepts=[c for c in generation.concepts if c in concepts],
            ranks=ranks,
            shares=shares,
            engine=engine,
        )
