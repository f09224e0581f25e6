"""Identifier <-> image ids, on two marisa tries and two integer arrays.

Each image has one identifier; an identifier names one image in a collision-free
corpus, several otherwise (kept, so nothing is lost). Both directions are
lookups in compact memory: 1M identifiers cost a few tens of MB.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from operator import itemgetter
from pathlib import Path

import marisa_trie
import numpy as np

from ssi_plugin.errors import InputError


class IdentifierIndex:
    """Which images an identifier names, and which identifier an image has.

    ``identifiers`` and ``images`` are marisa tries (string -> dense key id);
    ``_image_identifier[image_key]`` is the identifier key of an image, and
    ``_offsets``/``_members`` list the image keys of each identifier key (CSR).
    """

    FILES = ("identifiers.marisa", "images.marisa", "image_identifier.npy")

    def __init__(self, identifiers: marisa_trie.Trie, images: marisa_trie.Trie, image_identifier: np.ndarray) -> None:
        self.identifiers = identifiers
        self.images = images
        self._image_identifier = image_identifier
        self._members = np.argsort(image_identifier, kind="stable").astype(np.int32)
        counts = np.bincount(image_identifier, minlength=len(identifiers))
        self._offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    @classmethod
    def build(cls, pairs: Iterable[tuple[str, str]]) -> IdentifierIndex:
        """From ``(identifier, image_id)`` pairs; an image listed twice keeps its last identifier."""
        return cls.build_keyed(pairs)[0]

    @classmethod
    def build_keyed(cls, pairs: Iterable[tuple[str, str]]) -> tuple[IdentifierIndex, list[str], np.ndarray]:
        """``build``, plus the distinct identifiers (first-seen order) and their keys (what the token trie is built from).

        Bulk operations only (dicts, two marisa builds, one pass over each trie's
        items, numpy scatter): no per-pair trie lookups, which dominate at a million pairs.
        """
        pairs = pairs if isinstance(pairs, list) else list(pairs)
        by_image = _by_image(pairs)
        distinct = list(dict.fromkeys(by_image.values()))
        identifiers = marisa_trie.Trie(distinct)
        key_of = dict(identifiers.items())
        keys = np.fromiter(map(key_of.__getitem__, distinct), dtype=np.int32, count=len(distinct))
        images = marisa_trie.Trie(by_image)
        listed = images.items()
        image_identifier = np.empty(len(images), dtype=np.int32)
        image_identifier[np.fromiter(map(itemgetter(1), listed), dtype=np.int64, count=len(listed))] = np.fromiter(
            map(key_of.__getitem__, map(by_image.__getitem__, map(itemgetter(0), listed))), dtype=np.int64, count=len(listed)
        )
        return cls(identifiers, images, image_identifier), distinct, keys

    def __len__(self) -> int:
        """Number of distinct identifiers."""
        return len(self.identifiers)

    def __contains__(self, identifier: object) -> bool:
        return isinstance(identifier, str) and identifier in self.identifiers

    def __iter__(self) -> Iterator[str]:
        return iter(self.identifiers)

    @property
    def image_count(self) -> int:
        return len(self.images)

    def identifier_at(self, key: int) -> str:
        """The identifier with dense key ``key`` (as used by the token trie)."""
        return self.identifiers.restore_key(key)

    def image_ids(self, identifier: str) -> tuple[str, ...]:
        """Images named by ``identifier``; empty when it is unknown."""
        key = self.identifiers.get(identifier)
        if key is None:
            return ()
        members = self._members[self._offsets[key] : self._offsets[key + 1]]
        return tuple(self.images.restore_key(int(image)) for image in members)

    def identifier_of(self, image_id: str) -> str | None:
        key = self.images.get(image_id)
        return None if key is None else self.identifier_at(int(self._image_identifier[key]))

    def save(self, folder: Path) -> None:
        self.identifiers.save(str(folder / "identifiers.marisa"))
        self.images.save(str(folder / "images.marisa"))
        np.save(folder / "image_identifier.npy", self._image_identifier, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path) -> IdentifierIndex:
        identifiers = marisa_trie.Trie()
        identifiers.load(str(folder / "identifiers.marisa"))
        images = marisa_trie.Trie()
        images.load(str(folder / "images.marisa"))
        return cls(identifiers, images, np.load(folder / "image_identifier.npy", allow_pickle=False))


def _by_image(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """Image id -> its last identifier; a pair that is not two non-empty strings is an ``InputError`` naming it."""
    try:
        by_image = {image_id: identifier for identifier, image_id in pairs}
    except (TypeError, ValueError):  # an unhashable image id or a pair of another shape
        by_image = None
    if (
        by_image is not None
        and set(map(type, by_image)) <= {str}
        and set(map(type, by_image.values())) <= {str}
        and "" not in by_image
        and all(by_image.values())
    ):
        return by_image
    for position, pair in enumerate(pairs):
        identifier, image_id = pair if isinstance(pair, tuple | list) and len(pair) == 2 else (None, None)
        if not isinstance(identifier, str) or not identifier:
            raise InputError(f"pair {position}: identifier must be a non-empty string, got {identifier!r}")
        if not isinstance(image_id, str) or not image_id:
            raise InputError(f"pair {position}: image id must be a non-empty string, got {image_id!r}")
    raise AssertionError("unreachable: every pair is valid")
