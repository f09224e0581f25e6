"""Which token may follow a prefix: the token-level constraint of decoding.

Every identifier's token ids (ending in the *end token* that closes an
identifier) are one key of a marisa trie; a token id ``t`` is the character
``chr(t + 1)`` (skipping the surrogate block), so a key costs about one to
three bytes per token.

marisa has no "children of a node" call: listing keys under a prefix costs the
size of that subtree, which near the root is the corpus. So the build splits
nodes in two kinds:

- *heavy* nodes (more than ``heavy_threshold`` keys below) have their children
  precomputed (a few thousand nodes even for a million identifiers, found on
  the sorted keys by bisection, never by walking subtrees);
- *light* nodes are answered by walking their at most ``heavy_threshold`` keys.

A step therefore costs at most ``heavy_threshold`` key visits per beam, whatever
the corpus size, and the answer is exact (no approximate masking).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain, islice
from pathlib import Path
from typing import NamedTuple

import marisa_trie
import numpy as np

from ssi_plugin.errors import ModelError

_SURROGATES = 0xD800
_SURROGATE_SPAN = 0x800
MAX_TOKEN_ID = 0x10FFFF - _SURROGATE_SPAN - 1


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


def encode_many(sequences: Sequence[Sequence[int]] | TokenBatch, *, suffix: Sequence[int] = ()) -> tuple[list[str], np.ndarray]:
    """``encode_tokens`` of each sequence followed by ``suffix``, at C speed (one UTF-32 decode, then slices).

    Also returns the sorted distinct token ids of ``sequences`` (``suffix`` not included).
    """
    flat, lengths = TokenBatch.of(sequences)
    flat = np.asarray(flat, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if flat.size and (flat.min() < 0 or flat.max() > MAX_TOKEN_ID):
        raise ModelError(f"token ids must lie in 0..{MAX_TOKEN_ID}")
    tokens = np.flatnonzero(np.bincount(flat)) if flat.size else flat
    if suffix:
        flat = np.insert(flat, np.repeat(np.cumsum(lengths), len(suffix)), np.tile(np.asarray(suffix, dtype=np.int64), len(lengths)))
        lengths = lengths + len(suffix)
    codes = flat + 1
    codes[codes >= _SURROGATES] += _SURROGATE_SPAN
    text = codes.astype("<u4").tobytes().decode("utf-32-le")
    ends = np.cumsum(lengths).tolist()
    return [text[end - length : end] for end, length in zip(ends, lengths.tolist(), strict=True)], tokens


class TokenTrie:
    """Token-id sequences of identifiers; answers "which tokens may come next" and "which identifier is this"."""

    FILES = (
        "tokens.marisa",
        "token_offsets.npy",
        "token_identifiers.npy",
        "heavy.marisa",
        "heavy_offsets.npy",
        "heavy_children.npy",
        "vocabulary.npy",
    )

    def __init__(
        self,
        keys: marisa_trie.Trie,
        key_offsets: np.ndarray,
        key_identifiers: np.ndarray,
        heavy: dict[str, list[int]],
        vocabulary: np.ndarray,
        *,
        heavy_threshold: int,
    ) -> None:
        self._keys = keys
        self.vocabulary = vocabulary
        """Sorted token ids that occur in some sequence."""
        self._key_offsets = key_offsets
        self._key_identifiers = key_identifiers
        self._heavy = heavy
        self.heavy_threshold = heavy_threshold

    @classmethod
    def build(
        cls,
        sequences: Sequence[Sequence[int]] | TokenBatch,
        *,
        end_token_id: int,
        heavy_threshold: int = 32,
        identifier_keys: np.ndarray | None = None,
    ) -> TokenTrie:
        """From token-id sequences (without the end token, which closes each key).

        The i-th sequence names identifier key ``identifier_keys[i]`` (``i`` when not given).
        """
        if heavy_threshold < 1:
            raise ModelError(f"heavy_threshold must be at least 1, got {heavy_threshold}")
        batch = TokenBatch.of(sequences if isinstance(sequences, TokenBatch | list) else list(sequences))
        if not batch.lengths.all():
            raise ModelError("an identifier encodes to no tokens")
        encoded, tokens = encode_many(batch, suffix=(end_token_id,))
        if end_token_id in tokens:
            inside = batch.sequence(next(i for i, key in enumerate(encoded) if token_char(end_token_id) in key[:-1]))
            raise ModelError(f"the end token {end_token_id} occurs inside an identifier's tokens: {inside}")
        vocabulary = np.union1d(tokens, [end_token_id])
        # Label order makes marisa list its keys sorted: one pass gives the key ids and the sorted keys.
        keys = marisa_trie.Trie(encoded, order=marisa_trie.LABEL_ORDER)
        items = keys.items()
        key_ids = np.fromiter(map(dict(items).__getitem__, encoded), dtype=np.int64, count=len(encoded))
        named = np.arange(len(encoded)) if identifier_keys is None else np.asarray(identifier_keys)
        order = np.argsort(key_ids, kind="stable")
        counts = np.bincount(key_ids, minlength=len(keys))
        offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        heavy = _heavy_children([key for key, _ in items], heavy_threshold)
        return cls(keys, offsets, named[order].astype(np.int32), heavy, vocabulary.astype(np.int32), heavy_threshold=heavy_threshold)

    def __len__(self) -> int:
        """Number of distinct token sequences."""
        return len(self._keys)

    @property
    def heavy_nodes(self) -> int:
        return len(self._heavy)

    def children(self, prefix: str) -> list[int]:
        """Token ids that extend the encoded ``prefix`` towards some key; empty when none does."""
        listed = self._heavy.get(prefix)
        if listed is not None:
            return listed
        depth = len(prefix)
        return list({char_token(key[depth]) for key in self._keys.iterkeys(prefix) if len(key) > depth})

    def completion(self, prefix: str) -> list[int] | None:
        """The remaining token ids (end token included) when exactly one key extends ``prefix``; else None.

        Decoding needs no model step for such a prefix: every later token is forced.
        """
        if prefix in self._heavy:
            return None
        found = list(islice(self._keys.iterkeys(prefix), 2))
        if len(found) != 1:
            return None
        return [char_token(char) for char in found[0][len(prefix) :]]

    def identifier_keys(self, tokens: Sequence[int]) -> list[int]:
        """Identifier keys whose token sequence is exactly ``tokens`` (several only if a tokenizer merges them)."""
        key = self._keys.get(encode_tokens(tokens))
        if key is None:
            return []
        return self._key_identifiers[self._key_offsets[key] : self._key_offsets[key + 1]].tolist()

    def save(self, folder: Path) -> None:
        self._keys.save(str(folder / "tokens.marisa"))
        np.save(folder / "token_offsets.npy", self._key_offsets, allow_pickle=False)
        np.save(folder / "token_identifiers.npy", self._key_identifiers, allow_pickle=False)
        prefixes = marisa_trie.Trie(self._heavy)
        ordered = [self._heavy[prefix] for prefix, _ in sorted(prefixes.iteritems(), key=lambda item: item[1])]
        prefixes.save(str(folder / "heavy.marisa"))
        lengths = np.fromiter(map(len, ordered), dtype=np.int64, count=len(ordered))
        np.save(folder / "heavy_offsets.npy", np.concatenate(([0], np.cumsum(lengths))).astype(np.int64), allow_pickle=False)
        children = np.fromiter((t for listed in ordered for t in listed), dtype=np.int32, count=int(lengths.sum()))
        np.save(folder / "heavy_children.npy", children, allow_pickle=False)
        np.save(folder / "vocabulary.npy", self.vocabulary, allow_pickle=False)

    @classmethod
    def load(cls, folder: Path, *, heavy_threshold: int) -> TokenTrie:
        keys = marisa_trie.Trie()
        keys.load(str(folder / "tokens.marisa"))
        prefixes = marisa_trie.Trie()
        prefixes.load(str(folder / "heavy.marisa"))
        offsets = np.load(folder / "heavy_offsets.npy", allow_pickle=False)
        children = np.load(folder / "heavy_children.npy", allow_pickle=False)
        heavy = {prefix: children[offsets[i] : offsets[i + 1]].tolist() for prefix, i in prefixes.iteritems()}
        return cls(
            keys,
            np.load(folder / "token_offsets.npy", allow_pickle=False),
            np.load(folder / "token_identifiers.npy", allow_pickle=False),
            heavy,
            np.load(folder / "vocabulary.npy", allow_pickle=False),
            heavy_threshold=heavy_threshold,
        )


def _heavy_children(keys: list[str], threshold: int) -> dict[str, list[int]]:
    """Children of every node with more than ``threshold`` keys below it, from sorted unique keys.

    Depth by depth on arrays: the keys below a node of depth ``d`` are a run of
    sorted keys whose neighbours share at least ``d`` characters, so one pass per
    depth over the common-prefix lengths finds every node of that depth, and the
    passes stop at the first depth without a heavy node.
    """
    if len(keys) <= threshold:
        return {}
    lengths = np.fromiter(map(len, keys), dtype=np.int64, count=len(keys))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    codes = np.frombuffer("".join(keys).encode("utf-32-le"), dtype="<u4")
    common = _common_prefix_lengths(codes, starts, lengths)
    heavy: dict[str, list[int]] = {}
    groups = np.zeros(1, dtype=np.int64)  # first key of each node of the current depth
    for depth in range(int(lengths.max()) + 1):
        sizes = np.diff(groups, append=len(keys))
        parents = groups[sizes > threshold]
        if not parents.size:
            break
        groups = np.concatenate(([0], np.flatnonzero(common <= depth) + 1))  # nodes of depth + 1
        ends = parents + sizes[sizes > threshold]
        owner = np.searchsorted(parents, groups, side="right") - 1
        inside = (owner >= 0) & (lengths[groups] > depth)
        inside[inside] &= groups[inside] < ends[owner[inside]]
        tokens = codes[starts[groups[inside]] + depth].astype(np.int64) - 1
        tokens[tokens >= _SURROGATES + _SURROGATE_SPAN - 1] -= _SURROGATE_SPAN
        bounds = np.searchsorted(owner[inside], np.arange(1, len(parents)))
        for first, listed in zip(parents.tolist(), np.split(tokens, bounds), strict=True):
            heavy[keys[first][:depth]] = listed.tolist()
    return heavy


def _common_prefix_lengths(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``common[i]``: how many leading characters keys ``i`` and ``i + 1`` share (keys as code-point runs)."""
    common = np.zeros(max(len(starts) - 1, 0), dtype=np.int64)
    pending = np.arange(len(common))
    depth = 0
    while pending.size:
        within = (lengths[pending] > depth) & (lengths[pending + 1] > depth)
        pending = pending[within]
        same = codes[starts[pending] + depth] == codes[starts[pending + 1] + depth]
        pending = pending[same]
        depth += 1
        common[pending] = depth
    return common
