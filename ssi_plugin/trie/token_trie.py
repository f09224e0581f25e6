"""Which token may follow a prefix: the token-level constraint of decoding.

Every identifier is one key of a marisa trie: its token ids, the *end token*
that closes an identifier, then its *rank* in base-127 digits (``chr(1)`` to
``chr(127)``, one byte each). A token id ``t`` is the character ``chr(t + 1)``
(skipping the surrogate block), so a key costs about one to three bytes per
token. Ranks follow the sorted order of the token sequences and index the
identifier store (``IdentifierIndex``): the key carries its identifier, so no
pass over the trie is needed to learn the ids marisa gave its keys.

marisa has no "children of a node" call: listing keys under a prefix costs the
size of that subtree, which near the root is the corpus. So the build splits
nodes in two kinds:

- *heavy* nodes (more than ``heavy_threshold`` keys below) have their children
  precomputed (a few thousand nodes even for a million identifiers, found on
  the sorted sequences depth by depth, never by walking subtrees);
- *light* nodes are answered by walking their at most ``heavy_threshold`` keys.

A step therefore costs at most ``heavy_threshold`` key visits per beam, whatever
the corpus size, and the answer is exact (no approximate masking).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import chain
from pathlib import Path
from typing import NamedTuple

import marisa_trie
import numpy as np

from ssi_plugin.errors import ModelError

_SURROGATES = 0xD800
_SURROGATE_SPAN = 0x800
MAX_TOKEN_ID = 0x10FFFF - _SURROGATE_SPAN - 1
MAX_SEQUENCE_TOKENS = 512
"""Longest identifier a trie takes: the build sorts one row per identifier, as wide as the longest."""
_RANK_BASE = 127


def token_char(token: int) -> str:
    """The one-character code of a token id (ids are shifted by one so that 0 is not NUL)."""
    if not 0 <= token <= MAX_TOKEN_ID:
        raise ModelError(f"token id {token} is outside 0..{MAX_TOKEN_ID}")
    code = token + 1
    return chr(code + _SURROGATE_SPAN if code >= _SURROGATES else code)


def char_token(char: str) -> int:
    code = ord(char)
    return (code - _SURROGATE_SPAN if code >= _SURROGATES + _SURROGATE_SPAN else code) - 1


def encode_tokens(tokens: Sequence[int]) -> str:
    return "".join(map(token_char, tokens))


class TokenBatch(NamedTuple):
    """Token ids of many sequences, concatenated: what a batch encoder returns without a list per sequence."""

    flat: np.ndarray
    """All token ids, sequence after sequence."""
    lengths: np.ndarray
    """Token count of each sequence."""

    @classmethod
    def of(cls, sequences: Sequence[Sequence[int]] | TokenBatch) -> TokenBatch:
        if isinstance(sequences, TokenBatch):
            return sequences
        lengths = np.fromiter(map(len, sequences), dtype=np.int64, count=len(sequences))
        return cls(np.fromiter(chain.from_iterable(sequences), dtype=np.int64, count=int(lengths.sum())), lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def sequence(self, index: int) -> list[int]:
        start = int(self.lengths[:index].sum())
        return self.flat[start : start + int(self.lengths[index])].tolist()


class TokenTrie:
    """Token-id sequences of identifiers; answers "which tokens may come next" and "which identifier is this"."""

    FILES = ("tokens.marisa", "heavy.marisa", "heavy_offsets.npy", "heavy_children.npy", "vocabulary.npy")

    def __init__(
        self, keys: marisa_trie.Trie, heavy: dict[str, list[int]], vocabulary: np.ndarray, *, end_token_id: int, heavy_threshold: int
    ) -> None:
        self._keys = keys
        self._heavy = heavy
        self._end = token_char(end_token_id)
        self.vocabulary = vocabulary
        """Sorted token ids that occur in some sequence, and the end token."""
        self.end_token_id = end_token_id
        self.heavy_threshold = heavy_threshold

    @classmethod
    def build(
        cls, sequences: Sequence[Sequence[int]] | TokenBatch, *, end_token_id: int, heavy_threshold: int = 32
    ) -> tuple[TokenTrie, np.ndarray]:
        """From token-id sequences (without the end token, which closes each key).

        Also returns ``order``: the sequence of rank ``r`` (what ``ranks`` answers) is ``sequences[order[r]]``.
        Array work on one row of character codes per sequence, sorted once; no per-key trie lookups.
        """
        if heavy_threshold < 1:
            raise ModelError(f"heavy_threshold must be at least 1, got {heavy_threshold}")
        batch = _checked(TokenBatch.of(sequences if isinstance(sequences, TokenBatch | list) else list(sequences)), end_token_id)
        count = len(batch)
        digits = _rank_digits(count)
        lengths = batch.lengths + 1  # the end token closes each sequence
        rows = np.zeros((count, int(lengths.max(initial=0)) + digits), dtype="<u4")
        rows[np.arange(rows.shape[1]) < batch.lengths[:, None]] = _codes(batch.flat)
        rows[np.arange(count), batch.lengths] = ord(token_char(end_token_id))
        order = np.argsort(_strings(rows), kind="stable")
        rows, lengths = rows[order], lengths[order]
        heavy = _heavy_children(rows, lengths, heavy_threshold)
        ranks = np.arange(count)
        for digit in range(digits):  # most significant first: keys with equal tokens sort by rank
            rows[ranks, lengths + digit] = 1 + ranks // _RANK_BASE ** (digits - 1 - digit) % _RANK_BASE
        keys = marisa_trie.Trie(_strings(rows).tolist(), order=marisa_trie.LABEL_ORDER)
        seen = np.zeros(max(int(batch.flat.max(initial=0)), end_token_id) + 1, dtype=bool)
        seen[batch.flat] = seen[end_token_id] = True
        vocabulary = np.flatnonzero(seen).astype(np.int32)
        return cls(keys, heavy, vocabulary, end_token_id=end_token_id, heavy_threshold=heavy_threshold), order

    def __len__(self) -> int:
        """Number of sequences (one per identifier)."""
        return len(self._keys)

    @property
    def heavy_nodes(self) -> int:
        return len(self._heavy)

    def children(self, prefix: str) -> list[int]:
        """Token ids that extend the encoded ``prefix`` towards some key, ascending; empty when none does."""
        listed = self._heavy.get(prefix)
        if listed is not None:
            return listed
        depth = len(prefix)
        return sorted({char_token(key[depth]) for key, end in self._sequences(prefix) if end > depth})

    def rests(self, prefix: str, *, limit: int = 2) -> list[str]:
        """Up to ``limit`` distinct encoded remainders (end token included) of the sequences that extend ``prefix``.

        Stops one past the ``limit``-th distinct remainder (so a longer list means "more"), not after the whole subtree.
        """
        found: list[str] = []
        for key, end in self._sequences(prefix):
            rest = key[len(prefix) : end]
            if rest not in found:
                found.append(rest)
                if len(found) > limit:
                    break
        return found

    def completion(self, prefix: str) -> list[int] | None:
        """The remaining token ids (end token included) when exactly one sequence extends ``prefix``; else None.

        Decoding needs no model step for such a prefix: every later token is forced.
        """
        if prefix in self._heavy:
            return None
        rests = self.rests(prefix, limit=1)
        return [char_token(char) for char in rests[0]] if len(rests) == 1 else None

    def ranks(self, tokens: Sequence[int]) -> list[int]:
        """Ranks of the identifiers whose sequence is exactly ``tokens`` (end token included; several only if a tokenizer
        merges identifiers)."""
        if not tokens or tokens[-1] != self.end_token_id:
            return []
        prefix = encode_tokens(tokens)
        return [_rank(key[end:]) for key, end in self._sequences(prefix) if end == len(prefix)]

    def _sequences(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Keys whose token sequence extends ``prefix``, with where that sequence ends (after the end token)."""
        for key in self._keys.iterkeys(prefix):
            end = key.index(self._end) + 1
            if end >= len(prefix):
                yield key, end

    def save(self, folder: Path) -> None:
        self._keys.save(str(folder / "tokens.marisa"))
        prefixes = marisa_trie.Trie(self._heavy)
        ordered = [self._heavy[prefix] for prefix, _ in sorted(prefixes.iteritems(), key=lambda item: item[1])]
        prefixes.save(str(folder / "heavy.marisa"))
        lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered))
        np.save(folder / "heavy_offsets.npy", np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), allow_pickle=False)
        children = np.fromiter((t for listed in ordered for t in listed), dtype=np.int32, count=int(lengths.sum()))
        np.save(folder / "heavy_children.npy", children, allow_pickle=False)
        np.save(folder / "vocabulary.npy", self.vocabulary, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, *, end_token_id: int, heavy_threshold: int, mmap: bool = False) -> TokenTrie:
        keys = marisa_trie.Trie()
        if mmap:
            keys.mmap(str(folder / "tokens.marisa"))
        else:
            keys.load(str(folder / "tokens.marisa"))
        prefixes = marisa_trie.Trie()
        prefixes.load(str(folder / "heavy.marisa"))
        offsets = np.load(folder / "heavy_offsets.npy", allow_pickle=False)
        children = np.load(folder / "heavy_children.npy", allow_pickle=False)
        heavy = {prefix: children[offsets[i] : offsets[i + 1]].tolist() for prefix, i in prefixes.iteritems()}
        vocabulary = np.load(folder / "vocabulary.npy", allow_pickle=False)
        return cls(keys, heavy, vocabulary, end_token_id=end_token_id, heavy_threshold=heavy_threshold)


def _checked(batch: TokenBatch, end_token_id: int) -> TokenBatch:
    """``batch`` as int64 arrays; an empty, too long or out-of-range sequence, or one holding the end token, is a ``ModelError``."""
    flat, lengths = np.asarray(batch.flat, dtype=np.int64), np.asarray(batch.lengths, dtype=np.int64)
    if not lengths.all():
        raise ModelError("an identifier encodes to no tokens")
    if lengths.size and lengths.max() > MAX_SEQUENCE_TOKENS:
        longest = int(lengths.argmax())
        raise ModelError(f"identifier {longest} encodes to {int(lengths[longest])} tokens; a trie takes at most {MAX_SEQUENCE_TOKENS}")
    if flat.size and (flat.min() < 0 or flat.max() > MAX_TOKEN_ID):
        raise ModelError(f"token ids must lie in 0..{MAX_TOKEN_ID}")
    inside = np.flatnonzero(flat == end_token_id)
    if inside.size:
        tokens = TokenBatch(flat, lengths).sequence(int(np.searchsorted(np.cumsum(lengths), inside[0], side="right")))
        raise ModelError(f"the end token {end_token_id} occurs inside an identifier's tokens: {tokens}")
    return TokenBatch(flat, lengths)


def _codes(tokens: np.ndarray) -> np.ndarray:
    """``token_char`` code points of many token ids."""
    codes = tokens.astype("<u4") + 1
    codes[codes >= _SURROGATES] += _SURROGATE_SPAN
    return codes


def _tokens(codes: np.ndarray) -> np.ndarray:
    """``char_token`` of many code points."""
    tokens = codes.astype(np.int64) - 1
    tokens[tokens >= _SURROGATES + _SURROGATE_SPAN - 1] -= _SURROGATE_SPAN
    return tokens


def _strings(rows: np.ndarray) -> np.ndarray:
    """Rows of code points seen as one numpy string each (trailing zeros are not part of a string)."""
    return rows.view(f"<U{rows.shape[1]}").reshape(len(rows))


def _rank_digits(count: int) -> int:
    digits = 1
    while _RANK_BASE**digits < count:
        digits += 1
    return digits


def _rank(digits: str) -> int:
    rank = 0
    for digit in digits:
        rank = rank * _RANK_BASE + ord(digit) - 1
    return rank


def _heavy_children(rows: np.ndarray, lengths: np.ndarray, threshold: int) -> dict[str, list[int]]:
    """Children of every node with more than ``threshold`` keys below it, from sorted rows of code points.

    Depth by depth: the keys below a node of depth ``d`` are a run of sorted rows
    whose neighbours share at least ``d`` codes, so one pass per depth over the
    common-prefix lengths finds every node of that depth, and the passes stop at
    the first depth without a heavy node.
    """
    if len(rows) <= threshold:
        return {}
    differs = rows[1:] != rows[:-1]
    common = np.where(differs.any(axis=1), differs.argmax(axis=1), rows.shape[1])
    heavy: dict[str, list[int]] = {}
    groups = np.zeros(1, dtype=np.int64)  # first row of each node of the current depth
    for depth in range(int(lengths.max()) + 1):
        sizes = np.diff(groups, append=len(rows))
        parents = groups[sizes > threshold]
        if not parents.size:
            break
        groups = np.concatenate(([0], np.flatnonzero(common <= depth) + 1))  # nodes of depth + 1
        ends = parents + sizes[sizes > threshold]
        owner = np.searchsorted(parents, groups, side="right") - 1
        inside = (owner >= 0) & (lengths[groups] > depth)
        inside[inside] &= groups[inside] < ends[owner[inside]]
        tokens = _tokens(rows[groups[inside], depth])
        bounds = np.searchsorted(owner[inside], np.arange(1, len(parents)))
        for first, listed in zip(parents.tolist(), np.split(tokens, bounds), strict=True):
            heavy[rows[first, :depth].tobytes().decode("utf-32-le")] = listed.tolist()
    return heavy
