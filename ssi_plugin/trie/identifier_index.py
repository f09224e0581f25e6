"""Identifier <-> image ids, by the rank the token trie gives each identifier.

Each image has one identifier; an identifier names one image in a collision-free
corpus, several otherwise (kept, so nothing is lost). Identifiers are stored in
rank order, which is the sorted order of their token sequences, and image ids in
sorted order (found by bisection); neighbours share most of their text and
compress well. Two integer arrays link them both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple, NoReturn

import numpy as np

from ssi_plugin.errors import InputError
from ssi_plugin.trie.string_blocks import SEPARATOR, StringBlocks


class Pairs(NamedTuple):
    """``(identifier, image_id)`` pairs grouped: what a trie is built from."""

    identifiers: list[str]
    """Distinct identifiers, first-seen order."""
    image_ids: list[str]
    """Distinct image ids."""
    image_identifier: np.ndarray
    """Position in ``identifiers`` of each image's identifier."""


def group_pairs(pairs: Iterable[tuple[str, str]]) -> Pairs:
    """Distinct identifiers and images; an image listed twice keeps its last identifier.

    A pair that is not two non-empty strings without NUL characters is an ``InputError`` naming it.
    """
    pairs = pairs if isinstance(pairs, list) else list(pairs)
    try:
        by_image = {image_id: identifier for identifier, image_id in pairs}
    except (TypeError, ValueError):  # an unhashable image id or a pair of another shape
        by_image = None
    if by_image is None or not _valid(by_image):
        _raise_for_first_invalid(pairs)
    position: dict[str, int] = {}
    image_identifier = np.fromiter(
        (position.setdefault(identifier, len(position)) for identifier in by_image.values()), dtype=np.int64, count=len(by_image)
    )
    return Pairs(list(position), list(by_image), image_identifier)


def _valid(by_image: dict[str, str]) -> bool:
    strings = set(map(type, by_image)) <= {str} and set(map(type, by_image.values())) <= {str}
    return (
        strings and "" not in by_image and all(by_image.values())
        and SEPARATOR not in "".join(by_image) and SEPARATOR not in "".join(by_image.values())
    )


def _raise_for_first_invalid(pairs: list[tuple[str, str]]) -> NoReturn:
    for position, pair in enumerate(pairs):
        identifier, image_id = pair if isinstance(pair, tuple | list) and len(pair) == 2 else (None, None)
        for name, value in (("identifier", identifier), ("image id", image_id)):
            if not isinstance(value, str) or not value:
                raise InputError(f"pair {position}: {name} must be a non-empty string, got {value!r}")
            if SEPARATOR in value:
                raise InputError(f"pair {position}: {name} {value!r} contains a NUL character")
    raise AssertionError("unreachable: every pair is valid")


class IdentifierIndex:
    """Which identifier has rank ``r`` and which images it names; which identifier an image has."""

    FILES = ("identifiers.npz", "images.npz", "image_ranks.npy")

    def __init__(self, identifiers: StringBlocks, images: StringBlocks, image_ranks: np.ndarray) -> None:
        self._identifiers = identifiers
        self._images = images
        self._image_ranks = image_ranks
        """Rank of the identifier of the ``i``-th image (images sorted by id)."""
        self._rank_images = np.argsort(image_ranks, kind="stable").astype(np.int32)
        counts = np.bincount(image_ranks, minlength=len(identifiers))
        self._rank_offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        """Images of rank ``r`` are ``images[rank_images[rank_offsets[r] : rank_offsets[r + 1]]]``."""

    @classmethod
    def build(cls, pairs: Pairs, order: np.ndarray) -> IdentifierIndex:
        """``pairs`` with identifier ``pairs.identifiers[order[r]]`` at rank ``r``."""
        rank_of = np.empty(len(order), dtype=np.int32)
        rank_of[order] = np.arange(len(order))
        sorted_images = sorted(range(len(pairs.image_ids)), key=pairs.image_ids.__getitem__)
        return cls(
            StringBlocks.build([pairs.identifiers[position] for position in order.tolist()]),
            StringBlocks.build([pairs.image_ids[image] for image in sorted_images]),
            rank_of[pairs.image_identifier[sorted_images]],
        )

    def __len__(self) -> int:
        """Number of distinct identifiers."""
        return len(self._identifiers)

    def __iter__(self) -> Iterator[str]:
        """Identifiers by rank."""
        return iter(self._identifiers)

    def items(self) -> Iterator[tuple[str, tuple[str, ...]]]:
        """``(identifier, image ids)`` by rank."""
        for rank, identifier in enumerate(self._identifiers):
            yield identifier, self.image_ids_at(rank)

    @property
    def image_count(self) -> int:
        return len(self._images)

    def image_ids(self) -> Iterator[str]:
        """Every image id, sorted."""
        return iter(self._images)

    def identifier_at(self, rank: int) -> str:
        return self._identifiers[rank]

    def image_ids_at(self, rank: int) -> tuple[str, ...]:
        images = self._rank_images[self._rank_offsets[rank] : self._rank_offsets[rank + 1]]
        return tuple(self._images[image] for image in images.tolist())

    def identifier_of(self, image_id: str) -> str | None:
        """The identifier of ``image_id``; None when the trie does not hold that image."""
        image = self._images.find(image_id)
        return None if image is None else self.identifier_at(int(self._image_ranks[image]))

    def save(self, folder: Path) -> None:
        self._identifiers.save(folder / "identifiers.npz")
        self._images.save(folder / "images.npz")
        np.save(folder / "image_ranks.npy", self._image_ranks, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> IdentifierIndex:
        return cls(StringBlocks.load(folder / "identifiers.npz"), StringBlocks.load(folder / "images.npz"),
                   np.load(folder / "image_ranks.npy", allow_pickle=False, mmap_mode="r" if mmap else None))
