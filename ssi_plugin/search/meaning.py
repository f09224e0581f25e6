"""How close in meaning each image's identifier is to the whole query: the score of the meaning list.

The terms and related lists read a query word by word: a word an identifier holds counts in full, a word none holds
through its nearest concepts. An image ingested after the generator was trained is found only by them, and one
caption's identifier often holds few words of another caption of the same photo ("a father and his two young
children play in the sand near the water" for ``family, sandcastle, build, beach``), while a word alone also reaches
siblings ("green" is ``orange`` at 0.65). So the first images of the other lists fused (``MEANING_CANDIDATES``) are
also scored by the cosine between what the query means to the generator and what its identifier does, its concepts
read as a phrase ("family sandcastle build beach"): both read by the generator's encoder, its states averaged
(``Generator.embed``). Commas between the concepts were 40 % of a phrase's tokens, so of its cost, and with them
Recall@1 was no better (without them, unseen images were found first more often on four of the five sets replayed).
The default generator's encoder is all-MiniLM-L6-v2 fine-tuned at a tenth of the decoder's rate, and it reads the
query for decoding anyway, so the query's vector costs no model pass (all-MiniLM-L6-v2 itself, on the searcher's
second thread while the generator ran, cost 10-25 % more p50, and gave the same Recall within a point or two).
Fused like the dense list (each cosine over the best): no vector field, and no identifier is embedded
that no query found. An identifier's vector as the mean of its concepts' (which the related list holds for every
concept of the trie, so no query would embed anything) lost 10 points of Recall@1 on the synthetic corpus.

Phrase vectors are kept (``PHRASE_CACHE``, least recently used go first): the identifiers a query finds come back
query after query, and identifiers that differ only by their disambiguator (``#n``: images whose concepts coincide,
most of a large index) or the slots of their concepts share one.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

from ssi_plugin.identifiers import identifier_words

if TYPE_CHECKING:
    import numpy as np

MEANING_CANDIDATES = 20
"""The images the meaning list scores: the first of the other lists fused. A phrase the cache does not hold costs a
pass of the encoder (about 2.8 ms on one thread of the 2-core machine, 1.8 on two), so scoring every image the lists
found (up to 250 at 50 per list) would cost hundreds of ms per query over a large index. Over 1M synthetic images,
where every query's phrases are new, the list costs 41 ms per query at 20, 33 at 15, 24 at 10; Recall@1 (five sets
replayed) is the same at 10, 15 and 20 but for the Flickr30k-style and synthetic sets' unseen images (81.5, 84.3,
85.2 and 32.8, 33.3, 34.2)."""

PHRASE_CACHE = 65536
"""Identifier phrases whose vectors a searcher keeps."""


def identifier_phrase(identifier: str) -> str:
    """What an identifier says, as the text that is embedded: its concepts, the slots, the disambiguator and the
    commas left out (see the module's docstring)."""
    return " ".join(identifier_words(identifier))


class IdentifierMeanings:
    """Embeds identifiers' phrases with ``embed`` (the generator's ``embed``: unit vectors, one row per text; cached)
    and ranks found images by how close their identifier is to a query's vector made the same way."""

    def __init__(self, embed: Callable[[Sequence[str]], np.ndarray], *, cache: int = PHRASE_CACHE) -> None:
        self._embed = embed
        self._cache = cache
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def ranking(self, query: Sequence[float] | np.ndarray, identifiers: Mapping[str, str | None]) -> list[tuple[str, float]]:
        """``(document id, cosine)`` of every document with an identifier (``identifiers``: each document's), best
        first; a cosine below 0 counts as 0."""
        phrases = {doc_id: identifier_phrase(identifier) for doc_id, identifier in identifiers.items() if identifier}
        vectors = self._vectors_of(phrases.values())
        import numpy as np

        query = np.asarray(query, dtype=np.float32)
        scored = [(doc_id, max(0.0, float(vectors[phrase] @ query))) for doc_id, phrase in phrases.items()]
        return sorted(scored, key=lambda hit: -hit[1])

    def read_ahead(self, identifiers: Iterable[str | None]) -> None:
        """Embed now the phrases of ``identifiers`` the cache does not hold (a query's ``ranking`` will want them)."""
        self._vectors_of(identifier_phrase(identifier) for identifier in identifiers if identifier)

    def _vectors_of(self, phrases: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(phrases))
        with self._lock:
            found = {phrase: self._vectors[phrase] for phrase in wanted if phrase in self._vectors}
            for phrase in found:
                self._vectors.move_to_end(phrase)
        missing = [phrase for phrase in wanted if phrase not in found]
        if missing:  # embedded outside the lock: other queries read the cache meanwhile
            fresh = dict(zip(missing, self._embed(missing), strict=True))
            found.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self._cache:
                    self._vectors.popitem(last=False)
        return found
