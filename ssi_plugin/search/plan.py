"""Generated identifiers → the engine queries that find their images.

Ranked lists, each one engine query:
- ``exact``: ``ssi.id`` terms, each boosted by its candidate's probability;
- ``concepts``: slot-prefixed ``ssi.concepts`` terms weighted by how strongly the
  candidates support them, so an image whose identifier was not generated
  exactly is still found by the concepts it shares;
- ``terms``: the query's own words (and their lemmas, and neighbouring pairs)
  as concepts of any slot: an image ingested after the generator was trained
  shares words with the queries that describe it;
- ``related``: the index's concepts nearest in meaning to the query's words
  that no identifier holds (``ssi_plugin.search.related``), each boosted by its
  closeness: a paraphrase finds an image the generator was never trained on;
  the hits of these two are scored by the share of the query's words their
  identifier explains (``ssi_plugin.search.coverage``), not by the engine;
- ``meaning``: the first images of the other lists fused, scored by the cosine between the query's vector and its
  identifier's, both read by the generator's encoder (``ssi_plugin.search.meaning``): what a caption of the same photo
  in other words still shares;
- ``bm25``: the query text on the caption ingested with each image (by default; ``bm25_field`` names another
  field, or none), which holds words its identifier left out;
  these two are fused unless the generator is sure of an image that explains the query best
  (``looks_past_the_generator``);
- ``dense`` (optional, ``hybrid``): the engine's kNN search over a vector field,
  scored by cosine similarity; it takes the place of ``terms``, ``related`` and ``meaning``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from ssi_plugin.engine.vectors import knn_search
from ssi_plugin.generation.generator import GenerationResult, candidate_probabilities
from ssi_plugin.identifiers import SLOTS, identifier_words
from ssi_plugin.search.coverage import QueryWords
from ssi_plugin.search.options import SSIQuery
from ssi_plugin.search.related import BOOST_POWER

LIST_WEIGHTS = {"exact": 1.0, "concepts": 0.6, "terms": 5.0, "related": 32.0, "meaning": 16.0, "bm25": 0.4, "dense": 16.0}
"""Weights of the lists under linear fusion.

``meaning`` at 16, as the dense list (cosines of a MiniLM encoder, each over the best), chosen on four sets at once
with three trained models each, Recall@1 seen / unseen (the demo set's two splits, the COCO-style and Flickr30k-style
plain captions), then the synthetic corpus. Read by the generator's encoder (the default): at 8, 92.2 / 85.7, 93.9 /
77.4, 99.7 / 94.4, 92.5 / 82.4, 33.7 / 34.4; at 16, 91.1 / 84.5, 93.9 / 79.8, 99.7 / 95.8, 92.9 / 84.3, 33.5 / 33.3;
at 32, 91.1 / 84.5, 93.9 / 81.0, 99.4 / 97.2, 92.9 / 85.2, 33.8 / 32.2. Read by all-MiniLM-L6-v2, where the grid was
made: without the list 88.9 / 75.0, 93.3 / 69.0, 97.3 / 84.0, 88.9 / 65.7, 21.8 / 23.1;
at 2: 88.3 / 82.1, 93.3 / 73.8, 97.3 / 89.6, 90.1 / 72.2; at 4: 90.0 / 84.5, 95.0 / 76.2, 98.5 / 95.1, 90.5 / 79.6,
28.8 / 30.6; at 8: 91.7 / 86.9, 94.4 / 77.4, 99.4 / 97.9, 91.3 / 83.3, 31.4 / 33.9; at 16: 91.7 / 84.5, 93.9 / 83.3,
99.4 / 98.6, 93.3 / 83.3, 31.8 / 32.8; at 32: 91.1 / 88.1, 93.3 / 86.9, 99.4 / 98.6, 93.7 / 80.6. As 8 × cosine³ (one
scale for every query, like the terms list): 88.3 / 78.6, 93.3 / 70.2, 98.5 / 91.0, 90.1 / 69.4. Identifiers embedded
as the mean of their concepts' vectors instead of as a phrase, at 4: 89.4 / 84.5, 93.9 / 71.4 (the demo's two splits).
 ``terms`` and ``related`` score a hit by the share of the query's words
it explains (``ssi_plugin.search.coverage``), so their weights are what an image explaining every word gets: 5 and 32
(a word explained through a concept at cosine 0.7 counts 0.34 of a word).

``terms`` 5 rather than 4 since the related and BM25 lists are fused whenever an image found explains more of the query
than the one the generator is sure of (``looks_past_the_generator``), chosen on four sets at once, three trained models
each, Recall@1 seen / unseen (the demo set's two splits, and two sets of plain captions in the manner of COCO and
Flickr30k kept outside the repository): terms 4: 88.3 / 75.0, 93.9 / 65.5, 96.4 / 81.9, 87.3 / 60.2; 5: 88.9 / 75.0,
93.3 / 69.0, 96.1 / 83.3, 87.7 / 64.8; 6: 87.8 / 72.6, 93.3 / 67.9, 96.1 / 86.8, 87.3 / 66.7 (on the first three
sets only: 8: 87.2 / 71.4, 95.8 / 86.1, 85.3 / 63.0; 16: 75.0 / 64.3, 92.0 / 87.5, 81.3 / 63.9; related at 16 with
terms 4: 88.9 / 59.5, 96.7 / 77.8, 87.3 / 49.1). Plain captions share more words with their image's caption than
the demo set's paraphrases, so a held word is worth more there; the demo set pays for more than 5.

Before that rule, chosen with ``eval --unseen 0.3``, Recall@1
seen / unseen, on the demo set (mean of the three models of ``--seeds 3``) and then the synthetic corpus (first 1,200
queries): 4 / 32 gave 89.5 / 70.3 and 20.5 / 20.3, against 85.0 / 52.4 and 19.4 / 21.4 with both lists divided by
their best hit at 1 / 2. On the demo set 3 / 32: 90.0 / 69.0; 4 / 48: 90.0 / 67.9; 6 / 48: 88.9 / 70.2; 4 / 24:
87.8 / 64.3; cosine² instead of cosine³: 90.0 / 66.7; 8 / 64: 79.2 / 73.2 (seed 0 missing). The related list always
asked (``SURE_FROM`` 1): 86.7 / 76.2; below 0.95: 88.9 / 71.4; the synthetic corpus the same at all
three (its generator is seldom that sure). Over both splits of the demo set (``--split-seed`` 0 and 1, six trained
models): 4 / 32 91.7 / 63.7; 4 / 24 91.1 / 60.1; 4 / 16 90.8 / 51.2; 2 / 16 91.9 / 48.8; 2 / 8 92.2 / 30.4; 8 / 32
78.6 / 68.5.

``bm25`` at 0.4, the weight it had as an optional list, now asked on the caption by default (while the generator is
unsure): over both splits of the demo set 91.7 / 63.7 → 90.8 / 68.5; asked always, at 0.2 91.1 / 67.3, at 0.4 90.3
/ 68.5, at 0.6 88.1 / 68.5, at 1 81.1 / 67.3 (a BM25 hit divided by the list's best counts in full however weak).

Before, divided by their best (``terms`` 1, ``related`` 2): ``terms`` at 1.0 against 0.4 and 0.7 (copy
weight 0.5): Recall@1 seen / unseen on the synthetic corpus 0.174 / 0.147 against 0.170 / 0.140 at 0.7, the demo
set alike (0.900 / 0.214). At 1.5 (copy weight 0.3) the synthetic corpus gained (0.194 / 0.153) and the demo set
lost 4 of its 60 seen queries (0.867 / 0.107).

``related`` at 2, its concepts at cosine ≥ 0.5, three per word, boosted by cosine³, asked only below a confidence of
0.9 (``eval --unseen 0.3`` on the demo set, mean of the three models of ``--seeds 3``, Recall@1 seen / unseen): 0.850
/ 0.464 against 0.883 / 0.214 without the list. Always asked: 0.767 / 0.500 at weight 2, 0.844 / 0.321 at 1, 0.872 /
0.214 at 0.5; a floor of 0.6: 0.739 / 0.452; one concept per word: 0.778 / 0.488. Asked below a confidence of 0.95:
0.844 / 0.476, 0.8: 0.850 / 0.417; below 0.9 at weight 1.5: 0.850 / 0.345, at 3: 0.833 / 0.560. The related weight
scaled by the beam's uncertainty (1 - p, or its root) instead of the threshold: 0.867 / 0.310 and 0.856 / 0.345.
Expanding every query word, also those an identifier holds, brings in siblings ("dog" is as close to "cat", 0.66,
as "stallion" to "horse", 0.71) and lost seen queries on the synthetic corpus.

``dense`` at 16, and no ``terms`` list beside it (both find what the generator cannot name; the dense leg does it
better): the top hits' cosines lie close together, so only a large weight lets a clear kNN lead outweigh an exact
identifier, while a close call is still settled by the generator. Chosen on one trained SSI model per set (Elasticsearch,
the dense list's window of 50): Recall@1 / @5 on the demo set (88 queries) 95.5 / 98.9 against dense alone 93.2 / 100.0
and SSI alone 85.2 / 97.7; on the synthetic corpus (1,200 queries, 30 % of the images unseen) 39.9 / 68.7 against
39.8 / 69.2 and 16.2 / 35.9. Weights 12-20 give the same on the demo set and within 1.7 points on the synthetic one; at
1 (the dense list as one more list) 86.4 / 97.7 and 22.9 / 61.3, with the terms list at 1.0 93.2 / 98.9 and 39.8 / 67.9."""

SURE_FROM = 0.9
"""The generator is sure once its best identifier holds this share of the beam's mass: a generator sure of an image it
was trained on is rarely wrong, and the words it does not know are then paraphrases of it, which the related and BM25
lists would credit to other images (see ``LIST_WEIGHTS``); they are fused below it, or when another image explains
more of the query, or that identifier none of it (``looks_past_the_generator``)."""
_MIN_BOOST = 1e-4


def list_weights(result: GenerationResult, exact_found: Iterable[str | None], *, dense: bool) -> dict[str, float]:
    """``LIST_WEIGHTS`` for one query: without a ``dense`` leg, the exact list's weighted by the probability of the best
    identifier it found (``exact_found``: the identifiers of its hits), so that each exact hit counts as much as its
    identifier's share of the beam's mass.

    Linear fusion divides a list's scores by its best, so the exact list's first hit counted in full however unsure
    the generator was: a query about an image ingested after training, which the generator can only half name, lost
    to the image it was trained on that it named with 0.5 of its mass. (``eval --unseen 0.3``, demo set, the demo's
    trained model: Recall@1 seen / unseen 85.0 / 57.1 against 85.0 / 46.4; weighting the concept list alike as well
    lost a seen query, 83.3 / 57.1.) Not with a dense leg, whose weight was chosen with the exact list in full: there
    ssi+dense went from 93.6 to 93.2 on the demo set (``eval --seeds 3``), level with dense retrieval alone.
    """
    if dense:
        return dict(LIST_WEIGHTS)
    probabilities = candidate_probabilities(result.candidates)
    best = max((probabilities.get(identifier, 0.0) for identifier in exact_found if identifier), default=0.0)
    return {**LIST_WEIGHTS, "exact": LIST_WEIGHTS["exact"] * best}


class DenseLeg(NamedTuple):
    """What the dense list asks: the nearest neighbours of ``vector`` in ``field``, in the engine's own kNN syntax."""

    engine_kind: str
    field: str
    vector: Sequence[float]


def planned_lists(options: SSIQuery) -> list[str]:
    """Every list a search with ``options`` may ask, in fusion order (``plan_queries`` leaves out those with nothing to ask)."""
    lexical = ["dense"] if options.dense_field else ["terms", "related", "meaning"] if options.reads_words else []
    return ["exact", "concepts", *lexical, *(["bm25"] if options.bm25_searched_field else [])]


PAST_THE_GENERATOR = ("related", "bm25")
"""The lists that find what the generator cannot name: always asked, fused unless ``looks_past_the_generator`` says
the generator's answer stands."""


def looks_past_the_generator(probabilities: Mapping[str, float], words: QueryWords,
                             found: Iterable[Collection[str]]) -> bool:
    """Whether the lists of ``PAST_THE_GENERATOR`` are fused: while the generator is unsure (``SURE_FROM``), or sure of
    an identifier that explains less of the query than an image any list found (``found``: their identifiers'
    concepts), or none of it: the generator then names an image it was trained on, whatever the query says (an image
    ingested after training, described in words the generator never saw, drew 0.93 of its mass to a portrait; "a
    kitty napping on top of a computer" 0.95 to a teddy bear, while a cat on a laptop explains two of its words
    through related concepts).

    A word counts in full when an identifier holds one of its forms, as cosine³ through a related concept
    (``QueryWords``): the measure the terms and related lists are scored by, so no parameter is added.
    ``probabilities``: the generated identifiers' shares of the beam's mass (``candidate_probabilities``)."""
    if not probabilities:
        return True
    best, probability = max(probabilities.items(), key=lambda item: item[1])
    if probability < SURE_FROM:
        return True
    own = words.explained(identifier_words(best))
    return own == 0 or any(words.explained(concepts) > own for concepts in found)


def plan_queries(result: GenerationResult, options: SSIQuery, *, window: int, filters: Sequence[dict[str, Any]] = (),
                 must_not: Sequence[dict[str, Any]] = (), dense: DenseLeg | None = None,
                 words: QueryWords | None = None) -> dict[str, dict[str, Any]]:
    """The search bodies of each list, by list name: the generator's lists (``generated_lists``), then the query's
    own (``query_lists``); lists with nothing to ask are left out."""
    return {**generated_lists(result, window=window, filters=filters, must_not=must_not),
            **query_lists(options, window=window, filters=filters, must_not=must_not, dense=dense, words=words)}


def generated_lists(result: GenerationResult, *, window: int, filters: Sequence[dict[str, Any]] = (),
                    must_not: Sequence[dict[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """The lists of what the generator found: its identifiers (exact) and their concepts.

    Every list matches only documents that pass ``filters`` and none of ``must_not``.
    """
    bodies: dict[str, dict[str, Any]] = {}
    probabilities = candidate_probabilities(result.candidates)
    exact = [
        {"term": {"ssi.id": {"value": identifier, "boost": max(probability, _MIN_BOOST)}}}
        for identifier, probability in probabilities.items()
    ]
    if exact:
        bodies["exact"] = _list(exact, window, filters, must_not)
    concepts = [
        {"term": {"ssi.concepts": {"value": concept, "boost": max(weight, _MIN_BOOST)}}}
        for concept, weight in result.concepts.items()
    ]
    if concepts:
        bodies["concepts"] = _list(concepts, window, filters, must_not)
    return bodies


def query_lists(options: SSIQuery, *, window: int, filters: Sequence[dict[str, Any]] = (),
                must_not: Sequence[dict[str, Any]] = (), dense: DenseLeg | None = None,
                words: QueryWords | None = None) -> dict[str, dict[str, Any]]:
    """The lists of the query's own words or vector, which need no generation (so they can be asked while it runs).

    ``words``: the query's words and the concepts near those no identifier holds; the related list asks for those
    concepts unless there is a dense leg (then ``words`` is None). Whether it and the BM25 list are fused is decided
    once their hits are known (``looks_past_the_generator``).
    """
    bodies: dict[str, dict[str, Any]] = {}
    terms = [{"term": {f"ssi.{slot}": concept}} for concept in words.concepts() for slot in SLOTS] if words is not None else []
    if terms and dense is None:
        bodies["terms"] = _list(terms, window, filters, must_not)
    near = [{"term": {f"ssi.{slot}": {"value": concept, "boost": cosine**BOOST_POWER}}}
            for concept, cosine in (words.near() if words is not None else {}).items() for slot in SLOTS]
    if near and dense is None:  # near: only with words
        bodies["related"] = _list(near, window, filters, must_not)
    if (bm25_field := options.bm25_searched_field) and options.query:
        bodies["bm25"] = _list([{"match": {bm25_field: options.query}}], window, filters, must_not)
    if dense is not None:
        bodies["dense"] = knn_search(dense.engine_kind, dense.field, dense.vector, k=window, filters=filters, must_not=must_not)
    return bodies


def _list(clauses: list[dict[str, Any]], window: int, filters: Sequence[dict[str, Any]],
          must_not: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One list's search: documents matching at least one of ``clauses`` (scored by them) that pass the filters."""
    query: dict[str, Any] = {"should": clauses, "minimum_should_match": 1}
    if filters:
        query["filter"] = list(filters)
    if must_not:
        query["must_not"] = list(must_not)
    return {"size": window, "_source": False, "query": {"bool": query}}
