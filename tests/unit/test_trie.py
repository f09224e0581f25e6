"""The identifier trie: exact children, lookups both ways, save/load, and decoding never leaves it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ssi_plugin.errors import InputError, ModelError
from ssi_plugin.trie import IdentifierTrie

END = 0

token_sequences = st.lists(st.lists(st.integers(1, 40), min_size=1, max_size=6), min_size=1, max_size=60)


def _encode(batch):
    """Identifiers in these tests are space-separated token ids: a tokenizer with no surprises."""
    return [[int(part) for part in identifier.split()] for identifier in batch]


def _trie(sequences, *, heavy_threshold=3) -> IdentifierTrie:
    pairs = [(" ".join(map(str, tokens)), f"img-{n}") for n, tokens in enumerate(sequences)]
    return IdentifierTrie.build(pairs, encode=_encode, end_token_id=END, tokenizer_fingerprint="test", heavy_threshold=heavy_threshold)


def _keys(sequences):
    return {(*tokens, END) for tokens in sequences}


@settings(max_examples=150, deadline=None)
@given(token_sequences, st.integers(1, 8))
def test_children_are_exactly_the_next_tokens_of_existing_keys(sequences, heavy_threshold):
    trie = _trie(sequences, heavy_threshold=heavy_threshold)
    keys = _keys(sequences)
    prefixes = {key[:depth] for key in keys for depth in range(len(key))}
    for prefix in prefixes:
        expected = {key[len(prefix)] for key in keys if key[: len(prefix)] == prefix and len(key) > len(prefix)}
        assert sorted(trie.children(list(prefix))) == sorted(expected)
    assert trie.children([999]) == []


@settings(max_examples=100, deadline=None)
@given(token_sequences, st.randoms(use_true_random=False))
def test_any_walk_along_children_ends_at_an_identifier_of_the_trie(sequences, rnd):
    trie = _trie(sequences)
    for _ in range(10):
        walk: list[int] = []
        while not walk or walk[-1] != END:
            walk.append(rnd.choice(trie.children(walk)))
        [identifier] = trie.identifiers_for(walk)
        assert _encode([identifier])[0] + [END] == walk
        assert trie.index.image_ids(identifier)


def test_identifier_and_image_lookups_go_both_ways():
    pairs = [("objects: dog | scene: park", "a"), ("objects: dog | scene: park", "b"), ("objects: cat", "c")]
    trie = IdentifierTrie.build(pairs, encode=lambda batch: [[len(w) for w in s.split()] for s in batch],
                                end_token_id=END, tokenizer_fingerprint="t")
    assert len(trie) == 2 and trie.index.image_count == 3
    assert sorted(trie.index.image_ids("objects: dog | scene: park")) == ["a", "b"]
    assert trie.index.identifier_of("c") == "objects: cat"
    assert trie.index.image_ids("objects: bird") == () and trie.index.identifier_of("zzz") is None
    assert "objects: cat" in trie.index and "objects: bird" not in trie.index


def test_save_and_load_give_the_same_answers(tmp_path: Path):
    sequences = [[1, 2, 3], [1, 2, 4], [1, 5], [6], [1, 2, 3, 7]]
    trie = _trie(sequences, heavy_threshold=1)
    trie.save(tmp_path / "trie")
    loaded = IdentifierTrie.load(tmp_path / "trie")
    assert loaded.manifest == trie.manifest
    for prefix in ([], [1], [1, 2], [1, 2, 3], [6]):
        assert sorted(loaded.children(prefix)) == sorted(trie.children(prefix))
    assert loaded.identifiers_for([1, 2, 3, 7, END]) == ["1 2 3 7"]
    manifest = json.loads((tmp_path / "trie" / "manifest.json").read_text())
    assert manifest["identifiers"] == 5 and manifest["end_token_id"] == END
    assert not list((tmp_path / "trie").glob("*.pkl"))


def test_an_empty_trie_saves_loads_and_allows_nothing(tmp_path: Path):
    trie = _trie([])
    trie.save(tmp_path)
    loaded = IdentifierTrie.load(tmp_path)
    assert len(loaded) == 0 and loaded.children([]) == []


def test_missing_or_broken_trie_folders_are_clear_errors(tmp_path: Path):
    with pytest.raises(ModelError, match="no identifier trie"):
        IdentifierTrie.load(tmp_path / "nowhere")
    _trie([[1, 2]]).save(tmp_path / "t")
    (tmp_path / "t" / "tokens.marisa").unlink()
    with pytest.raises(ModelError, match="missing tokens.marisa"):
        IdentifierTrie.load(tmp_path / "t")
    (tmp_path / "t" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a valid trie manifest"):
        IdentifierTrie.load(tmp_path / "t")


def test_bad_pairs_and_a_clashing_end_token_are_refused():
    with pytest.raises(InputError, match="identifier must be a non-empty string"):
        IdentifierTrie.build([("", "img")], encode=_encode, end_token_id=END, tokenizer_fingerprint="t")
    with pytest.raises(InputError, match="image id"):
        IdentifierTrie.build([("1 2", "")], encode=_encode, end_token_id=END, tokenizer_fingerprint="t")
    with pytest.raises(ModelError, match="end token"):
        IdentifierTrie.build([("1 0 2", "img")], encode=_encode, end_token_id=END, tokenizer_fingerprint="t")
