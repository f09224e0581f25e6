"""How much of a query an image's identifier explains: the score of the query-terms and related lists.

The engine finds the images holding any of the query's words (``terms``) or a concept near a word no identifier
holds (``related``). Fusion used to divide each list's engine scores by its best, so a list's first hit counted in
full however little of the query it explained: an image sharing one plain word with a query ("small", "lines")
weighed as much as one that explained all of it, and often more than the image the generator named. Each hit of
those lists is scored here instead by the share of the query's words its identifier explains (a word in full by one
of its forms, by cosine³ through a concept near it), a scale that is the same for every query and every image, so
fusion takes it as it is.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from ssi_plugin.identifiers import concepts_of_words
from ssi_plugin.search.fusion import Ranking
from ssi_plugin.search.related import BOOST_POWER

EXPLAINED_LISTS = ("terms", "related")
"""Lists scored by ``by_words_explained``, on one scale for every query: fusion takes their scores as they are."""


@dataclass(frozen=True)
class QueryWords:
    """A query's words with the concepts each could stand for (``query_words``), and the concepts near the words
    no identifier holds (``ConceptVocabulary.related``)."""

    stands_for: Mapping[str, frozenset[str]]
    related: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def concepts(self) -> list[str]:
        """Every concept the query's words stand for, in a stable order: what the terms list asks the engine."""
        return concepts_of_words(self.stands_for)

    def near(self) -> dict[str, float]:
        """Every related concept with its best cosine to any word: what the related list asks the engine."""
        near: dict[str, float] = {}
        for concepts in self.related.values():
            for concept, cosine in concepts.items():
                near[concept] = max(cosine, near.get(concept, 0.0))
        return near

    def held(self, concepts: Collection[str]) -> float:
        """The share of the query's words that one of ``concepts`` (an identifier's) stands for."""
        return sum(1.0 for forms in self.stands_for.values() if not forms.isdisjoint(concepts)) / self._count()

    def related_to(self, concepts: Collection[str]) -> float:
        """The share of the query's words explained through related concepts: each by its nearest one in
        ``concepts``, as much as its cosine³."""
        return sum(max((cosine for concept, cosine in near.items() if concept in concepts), default=0.0) ** BOOST_POWER
                   for near in self.related.values()) / self._count()

    def explained(self, concepts: Collection[str]) -> float:
        """The share of the query's words ``concepts`` explain, held or through related concepts."""
        return self.held(concepts) + self.related_to(concepts)

    def _count(self) -> int:
        return max(len(self.stands_for), 1)


def by_words_explained(rankings: Mapping[str, Ranking], concepts_of: Mapping[str, Collection[str]],
                       words: QueryWords) -> dict[str, list[tuple[str, float]]]:
    """``rankings`` with the hits of ``EXPLAINED_LISTS`` scored by the share of the query their identifier explains
    (``concepts_of``: each hit's concepts), best first; ties keep the engine's order."""
    score = {"terms": words.held, "related": words.related_to}
    return {name: sorted(((doc_id, score[name](concepts_of[doc_id])) for doc_id, _ in ranking), key=lambda hit: -hit[1])
            if name in score else list(ranking) for name, ranking in rankings.items()}
