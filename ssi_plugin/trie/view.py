"""What decoding sees: a base trie, a small delta beside it, and the base images that are gone.

An index changes all the time; rebuilding its whole trie for every new image
costs seconds at a million identifiers. A view answers as one trie would over

    (base pairs whose image is neither deleted nor in the delta)  +  delta pairs

so new identifiers take a delta build (a cost that grows with the delta, not
the index) and a deletion takes a set insert. The answers do not depend on how
the pairs are split between base and delta (children come sorted, remainders
are compared across both parts), so two searchers that merged at different
moments decode alike. A deleted image's identifier may still be decoded until
the next merge drops it; ``entries_for`` no longer names the image, so it is
never returned.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from ssi_plugin.trie.store import Entry, IdentifierTrie
from ssi_plugin.trie.token_trie import char_token

CACHED_PREFIXES = 65536
"""Prefixes whose answers a view keeps (least recently used go first); callers must not change a returned list."""


class TrieView:
    """An immutable union of ``base`` and ``delta`` (same tokenizer, same end token) less ``removed`` base images."""

    def __init__(self, base: IdentifierTrie, delta: IdentifierTrie | None = None, *, removed: frozenset[str] = frozenset()) -> None:
        if delta is not None and (delta.manifest.tokenizer_fingerprint, delta.end_token_id) != (
            base.manifest.tokenizer_fingerprint, base.end_token_id):
            raise ValueError("a delta trie must be built with the base trie's tokenizer")
        self.base = base
        self.delta = delta if delta is not None and len(delta) else None
        self.removed = removed
        self._parts = (base,) if self.delta is None else (base, self.delta)
        self.vocabulary = base.tokens.vocabulary if self.delta is None else np.union1d(base.tokens.vocabulary, self.delta.tokens.vocabulary)
        """Sorted token ids that occur in some identifier of either part, and the end token."""
        self._hidden = removed | set(self.delta.index.image_ids()) if self.delta is not None else removed
        # A view never changes, so its answers can be kept: decoding asks the same prefixes query after query, and a
        # light node's answer is a walk over its keys (over both parts' keys with a delta).
        self.children = functools.lru_cache(maxsize=CACHED_PREFIXES)(self.children)  # type: ignore[method-assign]
        self.completion = functools.lru_cache(maxsize=CACHED_PREFIXES)(self.completion)  # type: ignore[method-assign]

    @property
    def end_token_id(self) -> int:
        return self.base.end_token_id

    @property
    def tokenizer_fingerprint(self) -> str:
        return self.base.manifest.tokenizer_fingerprint

    @property
    def heavy_threshold(self) -> int:
        return self.base.tokens.heavy_threshold

    @property
    def identifiers(self) -> int:
        """Identifiers of both parts (a deleted image's identifier counts until the next merge)."""
        return sum(len(part) for part in self._parts)

    def __len__(self) -> int:
        return self.identifiers

    def children(self, prefix: str) -> list[int]:
        """Token ids that extend the encoded ``prefix`` in either part, ascending."""
        if self.delta is None:
            return self.base.tokens.children(prefix)
        return sorted(set(self.base.tokens.children(prefix)).union(self.delta.tokens.children(prefix)))

    def completion(self, prefix: str) -> list[int] | None:
        """The remaining token ids when exactly one sequence of either part extends ``prefix``; else None."""
        if self.delta is None:
            return self.base.tokens.completion(prefix)
        rests: set[str] = set()
        for part in self._parts:
            rests.update(part.tokens.rests(prefix, limit=1))
            if len(rests) > 1:
                return None
        return [char_token(char) for char in rests.pop()] if rests else None

    def entries_for(self, tokens: Sequence[int]) -> list[Entry]:
        """Identifiers whose token sequence is ``tokens``, with their images still in the index; one entry each."""
        images: dict[str, list[str]] = {}
        for part in self._parts:
            for entry in part.entries_for(tokens):
                kept = entry.image_ids if part is self.delta else [i for i in entry.image_ids if i not in self._hidden]
                images.setdefault(entry.identifier, []).extend(kept)
        return [Entry(identifier, tuple(sorted(ids))) for identifier, ids in sorted(images.items()) if ids]

    def identifier_of(self, image_id: str) -> str | None:
        if self.delta is not None and (identifier := self.delta.index.identifier_of(image_id)) is not None:
            return identifier
        return None if image_id in self.removed else self.base.index.identifier_of(image_id)

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(identifier, image_id)`` of the view: what a merge builds the next base from."""
        pairs = [(identifier, image) for identifier, images in self.base.index.items() for image in images if image not in self._hidden]
        if self.delta is not None:
            pairs += [(identifier, image) for identifier, images in self.delta.index.items() for image in images]
        return pairs
