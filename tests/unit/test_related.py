"""Related concepts: the index's concepts nearest a query's words, with the packaged MiniLM, embedded once each."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from encoders import CountingEncoder

from ssi_plugin.generation.generator import Candidate, GenerationResult, candidate_probabilities
from ssi_plugin.identifiers import SLOTS, query_words
from ssi_plugin.search import SSIQuery
from ssi_plugin.search.coverage import QueryWords
from ssi_plugin.search.plan import looks_past_the_generator, plan_queries, planned_lists
from ssi_plugin.search.related import MIN_COSINE, ConceptVocabulary
from ssi_plugin.trie import IdentifierTrie, TrieView

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trie(pairs: list[tuple[str, str]]) -> IdentifierTrie:
    """A trie over characters: the vocabulary reads identifiers, not tokens."""
    return IdentifierTrie.build(pairs, encode=lambda batch: [[ord(c) for c in text] for text in batch], end_token_id=0,
                                tokenizer_fingerprint="chars")


def _vocabulary() -> tuple[ConceptVocabulary, CountingEncoder]:
    counting = CountingEncoder()
    return ConceptVocabulary(encoder=lambda: counting), counting  # type: ignore[arg-type]  # duck-typed encoder


BASE = [("objects: horse | scene: pasture", "a"), ("objects: brick, wall", "b"), ("objects: gravel | scene: road", "c")]


def test_paraphrased_words_find_the_concepts_they_mean_and_only_those() -> None:
    vocabulary, _ = _vocabulary()
    related = vocabulary.related(TrieView(_trie(BASE)), query_words("a stallion on the pebbles"))
    assert set(related) == {"stallion", "pebbles"}  # by the query's words
    near = {concept for concepts in related.values() for concept in concepts}
    assert {"horse", "gravel"} <= near and "wall" not in near and "pasture" not in near
    assert "horse" in related["stallion"] and "gravel" not in related["stallion"]
    assert all(MIN_COSINE <= cosine <= 1.0 for concepts in related.values() for cosine in concepts.values())
    assert vocabulary.related(TrieView(_trie(BASE)), query_words("a horse on the road")) == {}  # words it knows: not expanded
    assert vocabulary.related(TrieView(_trie(BASE)), query_words("horses on the walls")) == {}  # nor their plurals


def test_new_concepts_are_embedded_once_and_a_merged_base_embeds_nothing() -> None:
    vocabulary, counting = _vocabulary()
    base = _trie(BASE)
    vocabulary.follow(TrieView(base))
    assert sorted(counting.asked) == ["brick", "gravel", "horse", "pasture", "road", "wall"]
    counting.asked.clear()
    with_delta = TrieView(base, _trie([("objects: bicycle | scene: snow", "d"), ("objects: horse", "e")]))
    assert "bicycle" in vocabulary.related(with_delta, query_words("bike"))["bike"]
    assert counting.asked == ["bicycle", "snow", "bike"]  # only what no part had, then the query word
    counting.asked.clear()
    merged = TrieView(_trie([*BASE, ("objects: bicycle | scene: snow", "d"), ("objects: horse", "e")]))
    vocabulary.follow(merged)
    assert vocabulary.related(merged, query_words("bike")) and counting.asked == []


def test_no_words_and_an_empty_trie_give_nothing() -> None:
    vocabulary, _ = _vocabulary()
    assert vocabulary.related(TrieView(_trie(BASE)), {}) == {}
    assert vocabulary.related(TrieView(_trie([])), query_words("horse")) == {}


def test_the_dense_leg_takes_the_place_of_the_related_list() -> None:
    assert planned_lists(SSIQuery(query="a stallion")) == ["exact", "concepts", "terms", "related", "meaning", "bm25"]
    assert planned_lists(SSIQuery(query="a stallion", hybrid=True)) == ["exact", "concepts", "dense"]


def _generation(*scores: float, first: str = "objects: thing0") -> GenerationResult:
    candidates = [Candidate(identifier=first if n == 0 else f"objects: thing{n}", score=score, image_ids=(f"img-{n}",))
                  for n, score in enumerate(scores)]
    return GenerationResult(query="a stallion grazing", candidates=candidates, query_tokens=3)


def test_the_related_and_bm25_lists_are_always_asked() -> None:
    options = SSIQuery(query="a stallion grazing")
    words = QueryWords(query_words(options.query or ""), {"stallion": {"horse": 0.71}})
    for generation in (_generation(-1.0, -1.2, -1.5), _generation(-0.01, -6.0, first="objects: horse")):
        bodies = plan_queries(generation, options, window=10, words=words)
        assert bodies["related"]["query"]["bool"]["should"] == [
            {"term": {f"ssi.{slot}": {"value": "horse", "boost": pytest.approx(0.71**3)}}} for slot in SLOTS]
        assert bodies["bm25"]["query"]["bool"]["should"] == [{"match": {"caption": "a stallion grazing"}}]


def test_they_are_fused_unless_the_generator_is_sure_of_an_image_that_explains_the_query_best() -> None:
    words = QueryWords(query_words("a stallion grazing"), {"stallion": {"horse": 0.71}})

    def looks_past(*scores: float, first: str, found: Sequence[Sequence[str]] = ()) -> bool:
        return looks_past_the_generator(candidate_probabilities(_generation(*scores, first=first).candidates), words,
                                        [frozenset(concepts) for concepts in found])

    assert looks_past(-1.0, -1.2, -1.5, first="objects: horse | actions: graze")  # unsure
    # 99.7 % of the beam's mass on an identifier that explains a word, and no image found explains more: trusted.
    assert not looks_past(-0.01, -6.0, first="objects: horse", found=[("horse",), ("cow", "pasture")])
    assert not looks_past(-0.01, -6.0, first="objects: dog | actions: graze", found=[("horse",)])  # 1 word, 0.36 of one
    # An image found that explains more of the query than the one the generator is sure of: it may be a new one.
    assert looks_past(-0.01, -6.0, first="objects: dog | actions: graze", found=[("horse", "graze")])
    # As sure of an identifier that explains none of the query's words: it names what it was trained on.
    assert looks_past(-0.01, -6.0, first="objects: cat, sofa")
    assert looks_past_the_generator({}, words, [])  # nothing generated


def test_the_bm25_list_searches_the_caption_unless_told_another_field_or_none() -> None:
    words = QueryWords(query_words("a stallion"))
    notes = plan_queries(_generation(-1.0), SSIQuery(query="a stallion", bm25_field="notes"), window=10, words=words)
    assert notes["bm25"]["query"]["bool"]["should"] == [{"match": {"notes": "a stallion"}}]
    nothing = SSIQuery.model_validate({"query": "a stallion", "bm25_field": None})  # as a search body says it
    assert "bm25" not in planned_lists(nothing) and "bm25" not in plan_queries(_generation(-1.0), nothing, window=10,
                                                                                 words=words)
    assert SSIQuery(image="data:image/png;base64,AAAA").bm25_searched_field is None  # no text to search


def test_followed_in_background_a_query_never_embeds_the_trie_itself() -> None:
    vocabulary, counting = _vocabulary()
    vocabulary.follow_in_background(TrieView(_trie(BASE))).result()
    counting.asked.clear()
    newer = TrieView(_trie([*BASE, ("objects: bicycle", "d")]))  # not followed yet: the last followed view answers
    assert "horse" in vocabulary.related(newer, query_words("stallion"))["stallion"]
    assert "bicycle" not in vocabulary.related(newer, query_words("bike")).get("bike", {})
    assert counting.asked == ["stallion", "bike"]
    vocabulary.follow_in_background(newer).result()
    assert "bicycle" in vocabulary.related(newer, query_words("bike"))["bike"]
    vocabulary.close()
