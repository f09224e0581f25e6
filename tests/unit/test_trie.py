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
        [entry] = trie.entries_for(walk)
        assert _encode([entry.identifier])[0] + [END] == walk
        assert entry.image_ids


def _word_lengths(batch):
    return [[len(word) for word in identifier.split()] for identifier in batch]


def test_lookups_go_both_ways_and_an_image_keeps_its_last_identifier():
    pairs = [("objects: dog | scene: park", "a"), ("objects: dog | scene: park", "b"), ("objects: cat", "c"), ("objects: bird", "c")]
    trie = IdentifierTrie.build(pairs, encode=_word_lengths, end_token_id=END, tokenizer_fingerprint="t")
    assert len(trie) == 2 and trie.index.image_count == 3
    assert set(trie.index) == {"objects: dog | scene: park", "objects: bird"}
    assert trie.entries_for([8, 3, 1, 6, 4, END]) == [("objects: dog | scene: park", ("a", "b"))]
    assert trie.entries_for([8, 4, END]) == [("objects: bird", ("c",))]
    assert trie.entries_for([8, 3, END]) == [] and trie.entries_for([8, 4]) == []
    assert [trie.index.identifier_of(image) for image in "abc"] == ["objects: dog | scene: park"] * 2 + ["objects: bird"]
    assert trie.index.identifier_of("zzz") is None and trie.index.identifier_of("") is None


def test_identifiers_a_tokenizer_merges_are_all_found():
    pairs = [("objects: dog", "a"), ("objects: cat", "b"), ("objects: bird", "c")]
    trie = IdentifierTrie.build(pairs, encode=_word_lengths, end_token_id=END, tokenizer_fingerprint="t")
    assert sorted(trie.entries_for([8, 3, END])) == [("objects: cat", ("b",)), ("objects: dog", ("a",))]
    assert trie.children([8]) in ([3, 4], [4, 3]) and trie.children([8, 3]) == [END]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=30).filter(lambda t: "\x00" not in t),
                          st.text(min_size=1, max_size=12).filter(lambda t: "\x00" not in t)), max_size=200))
def test_every_identifier_and_image_id_comes_back_as_given(pairs):
    """Any text, including many images per identifier and more identifiers than a compressed block holds."""
    trie = IdentifierTrie.build(pairs, encode=lambda batch: [[ord(c) % 50 + 1 for c in identifier] for identifier in batch],
                                end_token_id=END, tokenizer_fingerprint="t")
    expected: dict[str, list[str]] = {}
    for image, identifier in {image: identifier for identifier, image in pairs}.items():
        expected.setdefault(identifier, []).append(image)
    found = {}
    for identifier in trie.index:
        for entry in trie.entries_for([ord(c) % 50 + 1 for c in identifier] + [END]):
            found[entry.identifier] = sorted(entry.image_ids)
    assert found == {identifier: sorted(images) for identifier, images in expected.items()}
    assert {identifier: sorted(images) for identifier, images in trie.index.items()} == found
    for image, identifier in {image: identifier for identifier, image in pairs}.items():
        assert trie.index.identifier_of(image) == identifier


def test_save_and_load_give_the_same_answers(tmp_path: Path):
    sequences = [[1, 2, 3], [1, 2, 4], [1, 5], [6], [1, 2, 3, 7]]
    trie = _trie(sequences, heavy_threshold=1)
    trie.save(tmp_path / "trie")
    loaded = IdentifierTrie.load(tmp_path / "trie")
    assert loaded.manifest == trie.manifest
    for prefix in ([], [1], [1, 2], [1, 2, 3], [6]):
        assert sorted(loaded.children(prefix)) == sorted(trie.children(prefix))
    assert loaded.entries_for([1, 2, 3, 7, END]) == [("1 2 3 7", ("img-4",))]
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
    with pytest.raises(ModelError, match=r"missing tokens.marisa"):
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
    with pytest.raises(InputError, match="pair 1: image id 'b\\\\x00' contains a NUL character"):
        IdentifierTrie.build([("1 2", "a"), ("1 3", "b\x00")], encode=_encode, end_token_id=END, tokenizer_fingerprint="t")
    with pytest.raises(ModelError, match="identifier 1 encodes to 513 tokens; a trie takes at most 512"):
        IdentifierTrie.build([("1", "a"), (" ".join(["1"] * 513), "b")], encode=_encode, end_token_id=END, tokenizer_fingerprint="t")


IDENTIFIERS = [
    "objects: dog, frisbee | actions: catch, jump | scene: park",
    "objects: Dog, café | attributes: red-brown, 3-legged | scene: park | #2",
    "objects: 猫, naïve, résumé | scene: kitchen's corner",
    "objects: dog | scene: park",
    "objects: dog, frisbee | actions: catch, jump | scene: park | #12",
    "objects: supercalifragilistic, xylophones | actions: zigzagging",
    "12345",
    "objects:dog,cat|scene:park",
]


def _trained(pre_tokenizer, *, model: str = "bpe"):
    """A small tokenizer trained on the spot, wrapped as transformers does."""
    from tokenizers import Tokenizer, decoders, models, normalizers, trainers
    from transformers import PreTrainedTokenizerFast

    if model == "bpe":
        tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
        trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"])
    else:
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=200, special_tokens=["<unk>", "</s>"], unk_token="<unk>")
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    if pre_tokenizer is not None:
        tokenizer.pre_tokenizer = pre_tokenizer
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(IDENTIFIERS * 20, trainer=trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="</s>")


def _tokenizers():
    from tokenizers import pre_tokenizers
    from transformers import AutoTokenizer

    from ssi_plugin.generation.models import minilm_path

    return {
        "minilm-wordpiece": (AutoTokenizer.from_pretrained(minilm_path()), True),
        "byte-level-bpe": (_trained(pre_tokenizers.ByteLevel(add_prefix_space=False)), True),
        "whitespace-then-digits": (_trained(pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Digits()])), True),
        "metaspace-unigram": (_trained(pre_tokenizers.Metaspace(), model="unigram"), True),
        "no-pre-tokenizer": (_trained(None), False),
    }


def test_word_by_word_encoding_gives_the_ids_of_plain_encoding():
    from ssi_plugin.generation.spec import _encode_by_words, encode_identifiers, encode_identifiers_batch, splits_at_spaces

    corpus = [f"{identifier} | scene: w{n % 7}" for n, identifier in enumerate(IDENTIFIERS * 30)]
    for name, (tokenizer, word_by_word) in _tokenizers().items():
        assert splits_at_spaces(tokenizer) is word_by_word, name
        assert (_encode_by_words(tokenizer, corpus) is not None) is word_by_word, name
        batch = encode_identifiers_batch(tokenizer, corpus)
        assert [batch.sequence(i) for i in range(len(corpus))] == encode_identifiers(tokenizer, corpus), name
        odd = [" leading space", "double  space", "tab\there", "trailing "]
        batch = encode_identifiers_batch(tokenizer, odd)
        assert [batch.sequence(i) for i in range(len(odd))] == encode_identifiers(tokenizer, odd), name


def test_a_trie_of_a_newer_format_is_refused_by_name(tmp_path: Path):
    _trie([[1, 2]]).save(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(
        ModelError, match=r"manifest.json is ssi-plugin/identifier-trie v99; this version reads ssi-plugin/identifier-trie v2"
    ):
        IdentifierTrie.load(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format_version": 1}))
    with pytest.raises(ModelError, match=r"has an older layout \(v1\); rebuild it from the index"):
        IdentifierTrie.load(tmp_path)


def _pairs_trie(pairs, *, heavy_threshold=3) -> IdentifierTrie:
    return IdentifierTrie.build(pairs, encode=_encode, end_token_id=END, tokenizer_fingerprint="test", heavy_threshold=heavy_threshold)


def _answers(view, prefixes):
    """Everything decoding asks of a trie, for each prefix."""
    from ssi_plugin.trie import encode_tokens

    return [(view.children(encode_tokens(p)), view.completion(encode_tokens(p)), view.entries_for(list(p)))
            for p in prefixes]


@settings(max_examples=120, deadline=None)
@given(token_sequences, st.data())
def test_a_view_over_base_and_delta_answers_as_one_trie_of_its_pairs(sequences, data):
    """However the pairs are split between base and delta (and base images hidden by deletion or by the delta),
    decoding sees what one trie of the surviving pairs shows: replicas that merged at other moments agree."""
    from ssi_plugin.trie import TrieView

    pairs = [(" ".join(map(str, tokens)), f"img-{n % 7}-{n}") for n, tokens in enumerate(sequences)]
    in_delta = data.draw(st.lists(st.booleans(), min_size=len(pairs), max_size=len(pairs)))
    deleted = {image for (_, image), gone in zip(pairs, data.draw(st.lists(st.booleans(), min_size=len(pairs),
                                                                          max_size=len(pairs))), strict=True) if gone}
    moved = data.draw(st.sets(st.sampled_from([image for _, image in pairs]), max_size=3))
    base_pairs = [pair for pair, delta in zip(pairs, in_delta, strict=True) if not delta]
    delta_pairs = [pair for pair, delta in zip(pairs, in_delta, strict=True) if delta and pair[1] not in deleted]
    delta_pairs += [("40 40", image) for image in moved - deleted]  # an image whose identifier changed
    base_pairs = base_pairs or [("39", "placeholder")]  # a base is never absent; an emptied one holds only the deleted
    view = TrieView(_pairs_trie(base_pairs), _pairs_trie(delta_pairs) if delta_pairs else None,
                    removed=frozenset(deleted | {"placeholder"}))
    surviving = {image: identifier for identifier, image in base_pairs if image not in deleted | {"placeholder"}}
    surviving.update({image: identifier for identifier, image in delta_pairs})
    if not surviving:
        return
    whole = TrieView(_pairs_trie([(identifier, image) for image, identifier in surviving.items()]))
    def key(identifier):
        return (*map(int, identifier.split()), END)

    live_keys = {key(identifier) for identifier in surviving.values()}
    dead_keys = {key(identifier) for identifier, _ in base_pairs} - live_keys
    prefixes = {key[:depth] for key in live_keys for depth in range(len(key) + 1)}
    for prefix, (children, completion, entries), (whole_children, whole_completion, whole_entries) in zip(
            prefixes, _answers(view, prefixes), _answers(whole, prefixes), strict=True):
        assert entries == whole_entries
        assert set(whole_children) <= set(children) and children == sorted(children)
        if not any(dead[: len(prefix)] == prefix for dead in dead_keys):  # a deleted image's path stays until a merge
            assert (children, completion) == (whole_children, whole_completion)
    assert sorted(view.pairs()) == sorted((identifier, image) for image, identifier in surviving.items())
    assert all(view.identifier_of(image) == identifier for image, identifier in surviving.items())
    assert all(view.identifier_of(image) is None for image in deleted - set(surviving))


def test_a_view_refuses_a_delta_of_another_tokenizer() -> None:
    from ssi_plugin.trie import TrieView

    other = IdentifierTrie.build([("1", "a")], encode=_encode, end_token_id=END, tokenizer_fingerprint="other")
    with pytest.raises(ValueError, match="tokenizer"):
        TrieView(_pairs_trie([("1", "b")]), other)


def _build(pairs):
    return _pairs_trie(list(pairs))


def _visible(view) -> dict[str, str]:
    return {image: identifier for identifier, image in view.pairs()}


def test_a_live_trie_takes_in_changes_and_merges_them_in_the_background() -> None:
    from ssi_plugin.trie.live import LiveTrie

    swapped = []
    merged = []
    live = LiveTrie(_build([("1 2", "a"), ("1 3", "b"), ("4", "c")]), _build, on_swap=swapped.append,
                    on_merge=lambda base, mark: merged.append((base, mark)), merge_min=4, merge_share=0.0)
    view = live.apply({"d": "1 5", "b": "1 6", "c": None, "zzz": None})
    assert _visible(view) == {"a": "1 2", "b": "1 6", "d": "1 5"} and len(swapped) == 2 and swapped[-1] is view  # the first: the base
    assert view.delta is not None and len(view.base) == 3 and view.removed == {"c"}  # no rebuild of the base
    assert [e.image_ids for e in view.entries_for([1, 3, END])] == [] and view.entries_for([1, 6, END])[0].image_ids == ("b",)
    assert live.apply({"a": "1 2"}) is view  # nothing new: no new view
    assert live.pending == 3 and live.merges == 0 and live.images == 3

    live.apply({"e": "7"}, mark="after e")  # the fourth pending change starts a merge
    live.wait()
    assert live.merges == 1 and live.pending == 0 and len(merged[-1][0]) == 4 and merged[-1][1] == "after e"
    assert live.view.delta is None and not live.view.removed
    assert _visible(live.view) == {"a": "1 2", "b": "1 6", "d": "1 5", "e": "7"} and swapped[-1] is live.view
    live.apply({"a": None, "b": None, "d": None, "e": None})
    live.wait()
    assert len(live.view) == 0 and _visible(live.view) == {}  # an emptied index: an empty trie, not an error


def test_changes_that_arrive_during_a_merge_stay_in_the_delta() -> None:
    import threading

    from ssi_plugin.trie import TrieView
    from ssi_plugin.trie.live import LiveTrie

    release = threading.Event()

    def slow_build(pairs):
        pairs = list(pairs)
        if len(pairs) > 2:  # the merge, not a delta
            release.wait(5)
        return _build(pairs)

    live = LiveTrie(_build([("1", "a")]), slow_build, merge_min=10**6)
    live.apply({"b": "2", "c": "3", "a": None})
    live.merge(wait=False)
    live.apply({"d": "4", "b": "5", "c": None})  # while the merge builds from {b: 2, c: 3}
    release.set()
    live.wait()
    assert live.merges == 1
    assert _visible(live.view) == {"b": "5", "d": "4"}
    assert live.view.removed == {"c"} and _visible(TrieView(live.view.delta)) == {"b": "5", "d": "4"}
