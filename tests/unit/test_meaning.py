"""The meaning list: found images scored by how close their identifier is to the whole query (packaged MiniLM)."""

from __future__ import annotations

import pytest
from encoders import CountingEncoder

from ssi_plugin.search.meaning import IdentifierMeanings, identifier_phrase

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SANDCASTLE = "objects: family, sandcastle | actions: build | scene: beach"
FOUNTAIN = "objects: child, water fountain | actions: play | attributes: hot"
ROAD = "objects: construction worker, vest | actions: work | attributes: orange, two | scene: road"


def test_an_identifier_is_embedded_as_the_phrase_of_its_concepts() -> None:
    assert identifier_phrase(SANDCASTLE) == "family, sandcastle, build, beach"
    assert identifier_phrase("objects: dog | scene: grass | #2") == "dog, grass"


def test_the_identifier_that_means_the_query_comes_first_though_it_holds_none_of_its_words() -> None:
    """The fountain holds "children" and "play" of the query; the sandcastle family holds none of its words, and is
    what the query describes (the case the terms and related lists lose: a caption of the same photo, other words)."""
    meanings = IdentifierMeanings()
    query = meanings.query_vector("A father and his two young children play in the sand near the water with buckets")
    ranking = meanings.ranking(query, {"fountain": FOUNTAIN, "sandcastle": SANDCASTLE, "road": ROAD, "no-ssi": None})
    assert [doc_id for doc_id, _ in ranking] == ["sandcastle", "fountain", "road"]
    assert 0 < ranking[-1][1] < ranking[0][1] <= 1


def test_identifiers_are_embedded_once_and_the_oldest_go_when_the_cache_is_full() -> None:
    counting = CountingEncoder()
    meanings = IdentifierMeanings(lambda: counting, cache=2)  # type: ignore[arg-type, return-value]
    query = meanings.query_vector("kids building a sandcastle")
    first = meanings.ranking(query, {"a": SANDCASTLE, "b": FOUNTAIN, "c": SANDCASTLE})
    assert counting.asked == ["kids building a sandcastle", identifier_phrase(SANDCASTLE), identifier_phrase(FOUNTAIN)]
    assert first[0][1] == first[1][1] and {doc_id for doc_id, _ in first[:2]} == {"a", "c"}  # one identifier, one vector
    again = meanings.ranking(query, {"b": FOUNTAIN, "a": SANDCASTLE})
    assert len(counting.asked) == 3 and again == [(doc_id, score) for doc_id, score in first if doc_id != "c"]
    meanings.ranking(query, {"d": ROAD})  # a third identifier: the least recently used (the fountain) goes
    meanings.ranking(query, {"b": FOUNTAIN, "a": SANDCASTLE})
    assert counting.asked[3:] == [identifier_phrase(ROAD), identifier_phrase(FOUNTAIN)]
