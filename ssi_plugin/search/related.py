"""Concepts the index holds that mean what the query's words mean: how a paraphrase finds an image the generator
was never trained on.

The generator names identifiers it learned; the query-terms list finds an image ingested after training only
through the query's own words. A query that says "stallion" for an image annotated ``horse``, or "pebbles" for
``gravel``, needs meaning, not spelling. Every concept of the trie's identifiers is embedded once with
all-MiniLM-L6-v2 (the model the dense leg uses; a concept is a short phrase, which it embeds well), and so is each
query word that no identifier holds (cached). The concepts within ``MIN_COSINE`` of such a word, at most
``PER_WORD`` of them, are asked as concept terms of any slot, each boosted by its cosine to the power
``BOOST_POWER``, so a near-synonym counts for much more than a loose association.

Only words the index does not know are expanded: a word it holds is what the user meant (the terms list finds it),
and word vectors do not tell a synonym from a sibling ("dog" is as close to "cat", 0.66, as "stallion" to "horse",
0.71), so expanding it would bring in the sibling. And the list is fused only while the generator is unsure, or sure
of an identifier that explains less of the query than another image
(``ssi_plugin.search.plan.looks_past_the_generator``).

Vectors are kept per trie part (the base, the small delta beside it): taking in new images embeds only the
concepts no part had, and a merged base re-embeds nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from ssi_plugin.embedding import MiniLMEncoder, shared_encoder
from ssi_plugin.identifiers import identifier_words

if TYPE_CHECKING:
    import numpy as np

    from ssi_plugin.trie import IdentifierTrie, TrieView

MIN_COSINE = 0.5
PER_WORD = 3
BOOST_POWER = 3
"""Chosen on a small grid with ``eval --unseen 0.3`` on the demo set, then checked on the synthetic corpus; the grid
is in ``ssi_plugin.search.plan.LIST_WEIGHTS``'s notes."""
WORD_CACHE = 65536
"""Query words whose vectors are kept (all of them are dropped when it is full: a rare event, and a cheap one)."""


class _Part:
    """One trie part's distinct concepts and their vectors (rows in the same order)."""

    def __init__(self, concepts: list[str], vectors: np.ndarray) -> None:
        self.concepts = concepts
        self.vectors = vectors
        self.known = frozenset(concepts)


class ConceptVocabulary:
    """The concepts of a trie view's identifiers with their vectors; ``related`` finds those nearest a query's words.

    A searcher over a fixed trie lets ``related`` follow the view it is given. A searcher whose trie changes under it
    calls ``follow_in_background`` with every new view (``SSISearcher.open`` does, from the trie's swaps): the
    vectors are then made on a thread of their own, never under the trie's lock or on a query, and queries use
    those of the last view followed until the next one is ready.
    """

    def __init__(self, encoder: Callable[[], MiniLMEncoder] = shared_encoder) -> None:
        self._encoder = encoder
        self._lock = threading.Lock()
        self._view: TrieView | None = None
        self._parts: dict[int, tuple[IdentifierTrie, _Part]] = {}
        self._words: dict[str, np.ndarray] = {}
        self._wanted: TrieView | None = None
        self._follower: ThreadPoolExecutor | None = None

    def follow(self, view: TrieView) -> list[_Part]:
        """The vectors of ``view``'s concepts, embedding only the concepts of parts not seen before (outside the lock:
        queries read the parts of the last view meanwhile)."""
        with self._lock:
            if view is self._view:
                return [part for _, part in self._parts.values()]
            known = dict(self._parts)
        kept = {}
        for part in (view.base, view.delta):
            if part is not None:
                cached = known.get(id(part))
                kept[id(part)] = cached if cached is not None and cached[0] is part else (part, _embed_part(part, known, self._encoder))
        with self._lock:
            self._parts, self._view = kept, view
        return [part for _, part in kept.values()]

    def follow_in_background(self, view: TrieView) -> Future[object]:
        """Follow ``view`` on the vocabulary's own thread; views that arrive meanwhile are skipped but for the last."""
        self._wanted = view
        if self._follower is None:
            self._follower = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssi-vocabulary")
        return self._follower.submit(lambda: self.follow(self._wanted) if self._wanted is view else None)

    def close(self) -> None:
        if self._follower is not None:
            self._follower.shutdown(wait=True)

    def _current(self, view: TrieView) -> list[_Part]:
        """The parts of ``view``; when followed in the background, those of the last view followed: a query never
        waits for a trie to be embedded."""
        with self._lock:
            if self._follower is not None:
                return [part for _, part in self._parts.values()]
        return self.follow(view)

    def related(self, view: TrieView, words: Mapping[str, Collection[str]]) -> dict[str, dict[str, float]]:
        """For each query word none of whose concepts (``words``: ``query_words``) an identifier of ``view`` holds,
        ``{concept: cosine}`` of the concepts nearest it; words with none near enough are left out."""
        import numpy as np

        parts = self._current(view)
        unknown = [word for word, concepts in words.items()
                   if not any(concept in part.known for part in parts for concept in concepts)]
        if not unknown:
            return {}
        queried = self._word_vectors(unknown)
        found: dict[str, dict[str, float]] = {word: {} for word in unknown}
        for part in parts:
            if not part.concepts:
                continue
            for word, row in zip(unknown, queried @ part.vectors.T, strict=True):
                near = found[word]
                for column in np.argsort(-row)[:PER_WORD]:
                    concept, cosine = part.concepts[column], float(row[column])
                    if cosine >= MIN_COSINE and cosine > near.get(concept, 0.0):
                        near[concept] = cosine
        return {word: near for word, near in found.items() if near}

    def _word_vectors(self, words: Sequence[str]) -> np.ndarray:
        import numpy as np

        cached = self._words
        missing = [word for word in dict.fromkeys(words) if word not in cached]
        fresh = dict(zip(missing, self._encoder().encode(missing), strict=True)) if missing else {}
        if len(cached) + len(fresh) > WORD_CACHE:
            self._words = {}
        self._words.update(fresh)
        return np.stack([fresh[word] if word in fresh else cached[word] for word in words])


def _embed_part(part: IdentifierTrie, known: dict[int, tuple[IdentifierTrie, _Part]],
                encoder: Callable[[], MiniLMEncoder]) -> _Part:
    """One part's concepts and vectors; a concept ``known`` parts hold is not embedded again (a merged base holds the
    concepts of the parts before it)."""
    import numpy as np

    concepts = sorted({concept for identifier in part.index for concept in identifier_words(identifier)})
    vectors = {concept: row for _, seen in known.values() for concept, row in zip(seen.concepts, seen.vectors, strict=True)}
    missing = [concept for concept in concepts if concept not in vectors]
    if missing:
        vectors.update(zip(missing, encoder().encode(missing), strict=True))
    return _Part(concepts, np.stack([vectors[concept] for concept in concepts]) if concepts else np.zeros((0, 0), np.float32))
