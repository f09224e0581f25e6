"""The identifier trie of one index for one tokenizer, saved as a self-describing folder.

A folder (``trie/`` beside a model) holds ``manifest.json`` and marisa/npy
files; no pickle. It is rebuilt from ``(identifier, image_id)`` pairs, e.g. the
pairs an engine scroll returns, with the tokenizer of the model that decodes
against it (the manifest records the tokenizer's fingerprint so a mismatch is
caught at load).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin import __version__
from ssi_plugin.errors import ModelError
from ssi_plugin.manifest import load_manifest
from ssi_plugin.trie.identifier_index import IdentifierIndex, group_pairs
from ssi_plugin.trie.token_trie import TokenBatch, TokenTrie, encode_tokens

FORMAT = "ssi-plugin/identifier-trie"
FORMAT_VERSION = 2
MANIFEST = "manifest.json"

Encode = Callable[[Sequence[str]], Sequence[Sequence[int]] | TokenBatch]
"""Tokenizes identifiers into token ids, without special tokens: a list per identifier, or one ``TokenBatch``."""


class TrieManifest(BaseModel):
    """What a trie folder holds and which tokenizer its token sequences belong to."""

    model_config = ConfigDict(extra="ignore")

    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    created_with: str = __version__
    identifiers: int = Field(ge=0)
    images: int = Field(ge=0)
    heavy_nodes: int = Field(ge=0)
    heavy_threshold: int = Field(ge=1)
    end_token_id: int = Field(ge=0)
    tokenizer_fingerprint: str


class Entry(NamedTuple):
    """An identifier of the trie and the images it names."""

    identifier: str
    image_ids: tuple[str, ...]


class IdentifierTrie:
    """Identifier <-> image ids plus the token-level prefix constraint of one tokenizer."""

    def __init__(self, index: IdentifierIndex, tokens: TokenTrie, manifest: TrieManifest) -> None:
        self.index = index
        self.tokens = tokens
        self.manifest = manifest

    @classmethod
    def build(
        cls,
        pairs: Iterable[tuple[str, str]],
        *,
        encode: Encode,
        end_token_id: int,
        tokenizer_fingerprint: str,
        heavy_threshold: int = 32,
    ) -> IdentifierTrie:
        """From ``(identifier, image_id)`` pairs.

        Each distinct identifier is tokenized once (one ``encode`` call) and closed by ``end_token_id``.
        """
        with paused_gc():
            grouped = group_pairs(pairs)
            sequences = encode(grouped.identifiers) if grouped.identifiers else []
            if len(sequences) != len(grouped.identifiers):
                raise ModelError(f"the encoder returned {len(sequences)} token sequences for {len(grouped.identifiers)} identifiers")
            tokens, order = TokenTrie.build(sequences, end_token_id=end_token_id, heavy_threshold=heavy_threshold)
            index = IdentifierIndex.build(grouped, order)
        manifest = TrieManifest(
            identifiers=len(index),
            images=index.image_count,
            heavy_nodes=tokens.heavy_nodes,
            heavy_threshold=heavy_threshold,
            end_token_id=end_token_id,
            tokenizer_fingerprint=tokenizer_fingerprint,
        )
        return cls(index, tokens, manifest)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def end_token_id(self) -> int:
        return self.manifest.end_token_id

    def children(self, prefix: Sequence[int]) -> list[int]:
        """Token ids allowed after the generated ``prefix`` (GENRE's ``prefix_allowed_tokens_fn`` answer)."""
        return self.tokens.children(encode_tokens(prefix))

    def entries_for(self, tokens: Sequence[int]) -> list[Entry]:
        """Identifiers whose token sequence is ``tokens`` (end token included), with their images; empty when none."""
        return [Entry(self.index.identifier_at(rank), self.index.image_ids_at(rank)) for rank in self.tokens.ranks(tokens)]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.index.save(folder)
        self.tokens.save(folder)
        (folder / MANIFEST).write_text(self.manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, folder: Path, *, mmap: bool = False) -> IdentifierTrie:
        """Load a folder written by ``save``; a missing or foreign folder is a ``ModelError`` naming it.

        ``mmap`` maps the token trie and the arrays instead of reading them: processes that load one folder share
        those pages (the folder must then stay unchanged while it is mapped).
        """
        manifest = load_manifest(
            TrieManifest, folder / MANIFEST, what="trie manifest", format_name=FORMAT, version=FORMAT_VERSION,
            missing=f"no identifier trie at {folder} ({MANIFEST} is missing); rebuild it from the index",
        )
        if manifest.format_version < FORMAT_VERSION:
            raise ModelError(f"the identifier trie at {folder} has an older layout (v{manifest.format_version}); rebuild it from the index")
        missing = [name for name in (*IdentifierIndex.FILES, *TokenTrie.FILES) if not (folder / name).is_file()]
        if missing:
            raise ModelError(f"identifier trie at {folder} is incomplete: missing {', '.join(missing)}")
        index = IdentifierIndex.load(folder, mmap=mmap)
        tokens = TokenTrie.load(folder, end_token_id=manifest.end_token_id, heavy_threshold=manifest.heavy_threshold, mmap=mmap)
        return cls(index, tokens, manifest)


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside the block: a build allocates millions of acyclic objects, and each
    collection would walk all of them (several seconds at a million identifiers)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
