"""Strings by position, zlib-compressed in blocks: the identifier and image-id columns of a trie.

A marisa trie would store them as compactly, but it numbers its keys itself:
learning which number each string got is a pass over the whole trie (seconds at
a million identifiers). Here the position is the caller's, the build is one
compression per block, and a lookup decompresses one block (a few KB).
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from pathlib import Path

import numpy as np

BLOCK = 64
"""Strings per compressed block: neighbours share most of their text, so larger blocks compress better and look up slower."""

SEPARATOR = "\x00"
"""Between the strings of a block; no stored string may contain it."""


class StringBlocks:
    """An immutable list of strings that costs a fraction of their size in memory."""

    def __init__(self, data: np.ndarray, offsets: np.ndarray, count: int) -> None:
        self._data = data
        self._offsets = offsets
        self._count = count

    @classmethod
    def build(cls, strings: list[str]) -> StringBlocks:
        blocks = [zlib.compress(SEPARATOR.join(strings[start : start + BLOCK]).encode("utf-8"), 1)
                  for start in range(0, len(strings), BLOCK)]
        sizes = np.fromiter(map(len, blocks), dtype=np.int64, count=len(blocks))
        offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        return cls(np.frombuffer(b"".join(blocks), dtype=np.uint8), offsets, len(strings))

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, position: int) -> str:
        if not 0 <= position < self._count:
            raise IndexError(position)
        block, within = divmod(position, BLOCK)
        return self._block(block)[within]

    def find(self, value: str) -> int | None:
        """Position of ``value`` in blocks built from sorted strings, by bisection; None when absent."""
        block = bisect_right(range(len(self._offsets) - 1), value, key=lambda b: self._block(b)[0]) - 1
        if block < 0:
            return None
        strings = self._block(block)
        within = bisect_left(strings, value)
        return block * BLOCK + within if within < len(strings) and strings[within] == value else None

    def __iter__(self) -> Iterator[str]:
        for block in range(len(self._offsets) - 1):
            yield from self._block(block)

    def _block(self, block: int) -> list[str]:
        compressed = self._data[self._offsets[block] : self._offsets[block + 1]]
        return zlib.decompress(compressed.data).decode("utf-8").split(SEPARATOR)

    def save(self, path: Path) -> None:
        np.savez(path, data=self._data, offsets=self._offsets, count=np.int64(self._count))

    @classmethod
    def load(cls, path: Path) -> StringBlocks:
        with np.load(path, allow_pickle=False) as stored:
            return cls(stored["data"], stored["offsets"], int(stored["count"]))
