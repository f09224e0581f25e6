"""The query-terms and related lists score an image by how much of the query its identifier explains."""

from __future__ import annotations

import pytest

from ssi_plugin.identifiers import identifier_words, query_words
from ssi_plugin.search.coverage import QueryWords, by_words_explained
from ssi_plugin.search.related import BOOST_POWER

QUERY = "a red bicycle by a street lamp in the snow"  # red, bicycle, street, lamp, snow


def test_an_image_is_scored_by_the_share_of_the_query_words_it_holds() -> None:
    words = QueryWords(query_words(QUERY))
    assert words.held(identifier_words("objects: bicycle, street lamp | scene: snow")) == pytest.approx(4 / 5)
    assert words.held(identifier_words("objects: car | attributes: red")) == pytest.approx(1 / 5)
    assert words.held(identifier_words("objects: horse")) == 0.0
    assert QueryWords({}).held(["horse"]) == 0.0  # only function words: nothing to explain, no division by zero


def test_related_concepts_explain_a_word_by_their_closeness() -> None:
    words = QueryWords(query_words("a stallion in a meadow"), {"stallion": {"horse": 0.7, "pony": 0.6}})
    assert words.related_to(["horse", "pony", "field"]) == pytest.approx(0.7**BOOST_POWER / 2)  # its nearest one
    assert words.related_to(["pony"]) == pytest.approx(0.6**BOOST_POWER / 2)
    assert words.related_to(["field"]) == 0.0
    assert words.near() == {"horse": 0.7, "pony": 0.6}


def test_one_plain_shared_word_no_longer_outranks_an_image_that_explains_the_query() -> None:
    """The engine ranks by idf: a rare plain word first. The lists are re-ranked by what each image explains, on a
    scale that does not depend on the other hits; the lists the generator fills keep the engine's scores."""
    concepts = {"plain": identifier_words("objects: car | attributes: red"),
                "full": identifier_words("objects: bicycle, street lamp | scene: snow"),
                "other": identifier_words("objects: bicycle")}
    rankings = {"terms": [("plain", 9.0), ("other", 2.0), ("full", 1.5)], "exact": [("plain", 0.6), ("full", 0.4)]}
    rescored = by_words_explained(rankings, concepts, QueryWords(query_words(QUERY)))
    assert rescored["terms"] == [("full", pytest.approx(0.8)), ("plain", pytest.approx(0.2)), ("other", pytest.approx(0.2))]
    assert rescored["exact"] == rankings["exact"]
