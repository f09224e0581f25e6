"""Constrained generation with tiny random models: only real identifiers come out, bad input is handled."""

from __future__ import annotations

import copy
import itertools
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny_models import before_each_decoder_call, tiny_model

from ssi_plugin.config import Precision
from ssi_plugin.embedding import shared_encoder
from ssi_plugin.errors import ConfigError, InputError, ModelError
from ssi_plugin.generation.constraint import TrieConstraint, output_layer_path
from ssi_plugin.generation.generator import (
    Candidate,
    Generator,
    build_trie,
    concept_weights,
)
from ssi_plugin.generation.precision import Int8Linear, is_quantized, with_precision
from ssi_plugin.generation.spec import (
    GeneratorSpec,
    end_token_of,
    prompt_ids,
    tokenizer_fingerprint,
)
from ssi_plugin.identifiers import SSI

OBJECTS = ("dog", "cat", "frisbee", "ball", "bike", "tree", "boat", "kite")
ACTIONS = ("run", "jump", "catch", "sit", "fly")
SCENES = ("park", "beach", "street", "kitchen")
WORDS = [*OBJECTS, *ACTIONS, *SCENES, "objects", "actions", "scene", "a", "the", "in", "on", "#"]
IDENTIFIERS = sorted(
    SSI(objects=pair, actions=(action,), scene=(scene,)).id
    for pair, action, scene in itertools.product(itertools.combinations(OBJECTS, 2), ACTIONS, SCENES)
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["seq2seq", "causal"])
def parts(request):
    model, tokenizer = tiny_model([*IDENTIFIERS, " ".join(WORDS)], architecture=request.param)
    spec = GeneratorSpec(architecture=request.param, end_token_id=end_token_of(tokenizer),
                         tokenizer_fingerprint=tokenizer_fingerprint(tokenizer), max_query_tokens=16)
    return model, tokenizer, spec


def _generator(parts, identifiers, *, precision: Precision = "float32", **kwargs) -> Generator:
    model, tokenizer, spec = parts
    if precision != "float32":  # a copy: the module's model stays float32
        model = with_precision(copy.deepcopy(model), precision, keep=output_layer_path(model))
    trie = build_trie(tokenizer, [(identifier, f"img-{n}") for n, identifier in enumerate(identifiers)])
    return Generator(model, tokenizer, spec, trie, **kwargs)


@settings(max_examples=12, deadline=None)
@given(
    identifiers=st.lists(st.sampled_from(IDENTIFIERS), min_size=1, max_size=40, unique=True),
    query=st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join),
    k=st.sampled_from([1, 3, 6]),
)
def test_every_generated_identifier_exists_in_the_trie(parts, identifiers, query, k):
    generator = _generator(parts, identifiers)
    result = generator.generate(query, k=k)
    assert 1 <= len(result.candidates) <= min(k, len(identifiers))
    for candidate in result.candidates:
        assert candidate.identifier in identifiers
        assert candidate.image_ids == (f"img-{identifiers.index(candidate.identifier)}",)
    scores = [candidate.score for candidate in result.candidates]
    assert scores == sorted(scores, reverse=True)
    assert len({candidate.identifier for candidate in result.candidates}) == len(result.candidates)
    assert all(concept.split(":")[0] in {"objects", "actions", "scene"} for concept in result.concepts)


def test_a_small_trie_is_enumerated_completely_by_enough_beams(parts):
    identifiers = IDENTIFIERS[:4]
    result = _generator(parts, identifiers).generate("dog in the park", k=10)
    assert sorted(candidate.identifier for candidate in result.candidates) == identifiers


MIXED_LENGTHS = sorted([
    SSI(objects=("dog",)).id,
    SSI(objects=("dog", "frisbee"), actions=("catch", "jump"), scene=("park",)).id,
    SSI(objects=("cat",), scene=("kitchen",)).id,
    SSI(objects=("boat", "kite", "tree"), actions=("fly", "sit"), scene=("beach",)).id,
    SSI(objects=("ball",), actions=("run",)).id,
])


def test_beam_search_finishes_every_identifier_whatever_its_length(parts):
    """As many beams as identifiers: each comes out once, scored by its log-probability within the trie."""
    result = _generator(parts, MIXED_LENGTHS).generate("a dog catches a frisbee in the park", k=len(MIXED_LENGTHS))
    assert sorted(c.identifier for c in result.candidates) == MIXED_LENGTHS
    assert sum(math.exp(c.score) for c in result.candidates) == pytest.approx(1.0, abs=1e-4)


def test_the_greedy_answer_scores_as_it_does_among_the_beams(parts):
    generator = _generator(parts, MIXED_LENGTHS)
    for query in ("a dog", "boats and kites fly over the beach", "a cat in the kitchen"):
        greedy = generator.generate(query, k=1).candidates[0]
        scored = {c.identifier: c.score for c in generator.generate(query, k=len(MIXED_LENGTHS)).candidates}
        assert greedy.score == pytest.approx(scored[greedy.identifier], abs=1e-4)


@pytest.mark.parametrize("architecture", ["seq2seq", "causal"])
def test_the_beam_search_ranks_as_hugging_face_generate_with_the_trie_constraint(architecture):
    """Finishing a beam once its identifier is the only one left, and scoring only the trie's tokens, change nothing."""
    texts = [*MIXED_LENGTHS, " ".join(WORDS)]
    model, tokenizer = tiny_model(texts, architecture=architecture)
    spec = GeneratorSpec(architecture=architecture, end_token_id=end_token_of(tokenizer),
                         tokenizer_fingerprint=tokenizer_fingerprint(tokenizer), max_query_tokens=16)
    trie = build_trie(tokenizer, [(identifier, f"img-{n}") for n, identifier in enumerate(MIXED_LENGTHS)])
    beams = len(MIXED_LENGTHS)
    generator = Generator(tiny_model(texts, architecture=architecture)[0], tokenizer, spec, trie, copy_weight=0.0)
    for query in ("a dog catches a frisbee in the park", "boats and kites fly over the beach"):
        prompt = torch.tensor([prompt_ids(tokenizer, spec, query)[0]])
        start = 1 if architecture == "seq2seq" else prompt.shape[1]
        with torch.inference_mode():
            output = model.generate(
                input_ids=prompt, attention_mask=torch.ones_like(prompt), num_beams=beams, num_return_sequences=beams,
                logits_processor=[TrieConstraint(trie, prompt_length=start, vocab_size=len(tokenizer))],
                do_sample=False, early_stopping=False, length_penalty=0.0, max_new_tokens=spec.max_identifier_tokens,
                eos_token_id=spec.end_token_id, pad_token_id=tokenizer.pad_token_id, return_dict_in_generate=True, output_scores=True,
            )
        expected = {}
        for tokens, score in zip(output.sequences[:, start:].tolist(), output.sequences_scores.tolist(), strict=True):
            [entry] = trie.entries_for(tokens[: tokens.index(spec.end_token_id) + 1])
            expected[entry.identifier] = score
        found = {c.identifier: c.score for c in generator.generate(query, k=beams).candidates}
        assert found == pytest.approx(expected, abs=1e-4)


def test_bad_queries_give_an_error_or_a_result_that_says_why(parts):
    generator = _generator(parts, IDENTIFIERS[:10])
    for empty in ("", "   \n"):
        with pytest.raises(InputError, match="query is empty"):
            generator.generate(empty)
    with pytest.raises(InputError, match="k must be"):
        generator.generate("dog", k=0)
    long = generator.generate("dog " * 200, k=2)
    assert long.truncated and long.candidates and "only the first 16" in long.warnings[0]
    foreign = generator.generate("狗在公园里", k=2)
    if parts[1].unk_token_id is not None:
        assert foreign.candidates == [] and "vocabulary" in foreign.warnings[0]


def test_an_empty_trie_gives_no_candidates_and_says_so(parts):
    result = _generator(parts, []).generate("a dog", k=3)
    assert result.candidates == [] and "empty" in result.warnings[0]


def test_new_images_are_found_after_swapping_the_trie_without_retraining(parts):
    generator = _generator(parts, IDENTIFIERS[:3])
    new = IDENTIFIERS[-2:]
    generator.use_trie(generator.build_trie([(identifier, f"new-{n}") for n, identifier in enumerate(new)]))
    result = generator.generate("dog", k=5)
    assert sorted(c.identifier for c in result.candidates) == new
    assert {c.image_ids[0] for c in result.candidates} == {"new-0", "new-1"}


def test_folder_round_trip_and_folder_errors(parts, tmp_path: Path):
    _, _, spec = parts
    generator = _generator(parts, IDENTIFIERS[:20])
    generator.save(tmp_path / "gen")
    loaded = Generator.load(tmp_path / "gen", precision="float32")
    query = "a dog catches a frisbee"
    assert loaded.generate(query, k=3).candidates == generator.generate(query, k=3).candidates
    # without its trie
    for file in (tmp_path / "gen" / "trie").iterdir():
        file.unlink()
    with pytest.raises(ModelError, match="no identifier trie"):
        Generator.load(tmp_path / "gen")
    with pytest.raises(ModelError, match="not a generator folder"):
        Generator.load(tmp_path / "elsewhere")
    # a trie of another tokenizer
    _, other_tokenizer = tiny_model(["completely different words here"], architecture=spec.architecture)
    with pytest.raises(ModelError, match="another tokenizer"):
        generator.use_trie(build_trie(other_tokenizer, [("objects: dog", "x")]))
    (tmp_path / "gen" / "trie").rmdir()
    foreign = build_trie(other_tokenizer, [("objects: dog", "x")])
    with pytest.raises(ModelError, match=rf"generator {tmp_path / 'gen'}: .*fingerprint {foreign.manifest.tokenizer_fingerprint}\) "
                                         rf"than the generator's \({spec.tokenizer_fingerprint}\)"):
        Generator.load(tmp_path / "gen", trie=foreign)


def test_a_generator_loaded_in_int8_scores_as_its_float32_model(parts, tmp_path: Path, monkeypatch):
    """int8 by default: every linear layer but the output layer, which each trie projects, is quantized, and every
    identifier of a small trie scores close to its float32 score (``precision`` or ``SSI_PRECISION``)."""
    _generator(parts, IDENTIFIERS[:20]).save(tmp_path / "gen")
    fast = Generator.load(tmp_path / "gen")
    exact = Generator.load(tmp_path / "gen", precision="float32")
    assert not is_quantized(exact.model) and is_quantized(fast.model)
    assert (exact.precision, fast.precision) == ("float32", "int8")
    assert type(fast._head) is torch.nn.Linear
    query = "a dog catches a frisbee"
    scores = [{c.identifier: c.score for c in generator.generate(query, k=20).candidates} for generator in (exact, fast)]
    assert scores[0].keys() == scores[1].keys() == set(IDENTIFIERS[:20])
    assert max(abs(scores[0][identifier] - scores[1][identifier]) for identifier in scores[0]) < 0.05
    with pytest.raises(ModelError, match="loaded in int8 cannot be saved"):
        fast.save(tmp_path / "again")
    monkeypatch.setenv("SSI_PRECISION", "float32")
    assert not is_quantized(Generator.load(tmp_path / "gen").model)
    assert is_quantized(Generator.load(tmp_path / "gen", precision="int8").model)  # the argument over the setting
    monkeypatch.setenv("SSI_PRECISION", "int4")
    with pytest.raises(ConfigError, match=r"precision: Input should be 'int8' or 'float32'.* \(the generator's precision: SSI_PRECISION\)"):
        Generator.load(tmp_path / "gen")


def test_an_int8_layer_gives_each_row_what_it_gives_that_row_alone_and_close_to_float32():
    """Rows of very different magnitudes side by side: each is quantized at its own scale, never the batch's."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(96, 40)
    layer = Int8Linear(linear)
    rows = torch.randn(9, 96) * torch.tensor([0.01, 0.1, 1, 10, 100, 1, 1, 1, 1])[:, None]
    rows[5] = 0.0
    with torch.inference_mode():
        together = layer(rows.reshape(3, 3, 96))
        assert together.shape == (3, 3, 40)
        for n, row in enumerate(rows):
            assert torch.equal(layer(row[None])[0], together.reshape(9, 40)[n]), n
        exact = linear(rows)
    error = (together.reshape(9, 40) - exact).abs().amax(dim=1) / rows.abs().amax(dim=1).clamp_min(1e-6)
    assert float(error.max()) < 0.05  # within a few steps of each row's own grid, the tiny rows included


def test_a_torch_without_int8_kernels_loads_the_generator_in_float32_and_says_so(parts, tmp_path: Path, monkeypatch,
                                                                                    caplog):
    _generator(parts, IDENTIFIERS[:5]).save(tmp_path / "gen")

    def no_kernels(*args):
        raise RuntimeError("Didn't find engine for operation quantized::linear_prepack NoQEngine")

    monkeypatch.setattr(torch.ops.quantized, "linear_prepack", no_kernels)
    loaded = Generator.load(tmp_path / "gen", precision="int8")
    assert loaded.precision == "float32" and loaded.generate("dog", k=2).candidates
    assert "cannot compute in int8 (Didn't find engine" in caplog.text


def test_the_query_s_own_words_lead_the_generator_to_identifiers_it_never_wrote(parts):
    """A random model knows no identifier; with the copy prior the word a query names decides the first object,
    so an image ingested after training is named by the words a query shares with it."""
    objects = sorted(OBJECTS)  # each identifier opens with its own object
    identifiers = [SSI(objects=(first, second), actions=("run",)).id for first, second in itertools.pairwise(objects)]
    copying = _generator(parts, identifiers, copy_weight=0.9)
    for first in objects[:-1]:
        assert copying.generate(f"the {first}", k=3).candidates[0].identifier.startswith(f"objects: {first}, "), first
    plain = _generator(parts, identifiers, copy_weight=0.0)
    tops = {plain.generate(f"the {first}", k=3).candidates[0].identifier for first in objects[:-1]}
    assert len(tops) < len(objects) - 1, "without the prior a random model does not follow the query's words"
    scores = [c.score for c in copying.generate("the dog", k=len(identifiers)).candidates]
    assert sum(math.exp(score) for score in scores) == pytest.approx(1.0, abs=1e-4)  # still log-probabilities within the trie
    with pytest.raises(ModelError, match="copy_weight"):
        _generator(parts, identifiers, copy_weight=1.0)


def test_the_constraint_refuses_an_empty_trie_and_a_foreign_vocabulary(parts):
    _, tokenizer, _ = parts
    with pytest.raises(ModelError, match="empty"):
        TrieConstraint(build_trie(tokenizer, []), prompt_length=1, vocab_size=len(tokenizer))
    trie = build_trie(tokenizer, [(IDENTIFIERS[0], "a")])
    with pytest.raises(ModelError, match=r"outside the model's vocabulary.*another tokenizer"):
        TrieConstraint(trie, prompt_length=1, vocab_size=int(max(trie.tokens.vocabulary)))


def test_concept_weights_follow_candidate_probabilities():
    candidates = [
        Candidate(identifier="objects: dog | scene: park", score=-0.1, image_ids=("a",)),
        Candidate(identifier="objects: cat | scene: park", score=-2.0, image_ids=("b",)),
        Candidate(identifier="12345", score=-0.5, image_ids=("c",)),
    ]
    weights = concept_weights(candidates)
    assert next(iter(weights)) == "scene:park"
    assert weights["objects:dog"] > weights["objects:cat"] > 0
    assert weights["scene:park"] == pytest.approx(weights["objects:dog"] + weights["objects:cat"], abs=1e-5)
    assert concept_weights([]) == {}


@pytest.mark.parametrize("threads", [1, None])
def test_generation_runs_on_its_own_thread_count_and_restores_torchs(parts, threads):
    generator = _generator(parts, IDENTIFIERS[:5], threads=threads)
    seen: list[int] = []
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with before_each_decoder_call(generator, lambda: seen.append(torch.get_num_threads())):
            generator.generate("a dog", k=3)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert seen and set(seen) == {threads or 2}
    with pytest.raises(ModelError, match="threads"):
        _generator(parts, IDENTIFIERS[:5], threads=0)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_queries_asked_together_decode_together_and_rank_as_they_would_alone(parts, precision):
    """Concurrent callers share the model's passes (fewer decoder calls than one query at a time), and every query
    gets the identifiers and scores it gets alone: prompts of different lengths are padded, copy priors kept apart.
    So does the vector of what it means, which an encoder-decoder reads in its decoding (``embed`` gives the same).
    In int8 too, where a last-bit change in what a batch computes moves scores by a hundredth."""
    generator = _generator(parts, IDENTIFIERS[:60], copy_weight=0.5, precision=precision)
    queries = ["dog", "a cat jumps on the beach", "kite", "the boat and the ball in the street with a tree",
               "frisbee park", "bike", "a dog catches a frisbee in the park", "tree"]
    results = {query: generator.generate(query, k=4) for query in queries}
    alone = {query: result.candidates for query, result in results.items()}
    calls: list[int] = []
    release = threading.Event()

    def first_waits():  # the first batch holds the generator until every other query has been asked
        calls.append(1)
        if len(calls) == 1:
            release.wait(timeout=30)

    with before_each_decoder_call(generator, first_waits):
        with ThreadPoolExecutor(len(queries)) as pool:
            futures = {queries[0]: pool.submit(generator.generate, queries[0], k=4)}
            deadline = time.monotonic() + 30
            while not calls and time.monotonic() < deadline:  # the first query's batch has started
                time.sleep(0.01)
            futures.update({query: pool.submit(generator.generate, query, k=4) for query in queries[1:]})
            while len(generator._combined._queue) < len(queries) - 1 and time.monotonic() < deadline:
                time.sleep(0.01)
            release.set()
            together_results = {query: future.result(timeout=60) for query, future in futures.items()}
            together = {query: result.candidates for query, result in together_results.items()}
        calls_together = len(calls)
        calls.clear()
        release.set()
        for query in queries:
            generator.generate(query, k=4)
    assert calls_together < len(calls) / 2, (calls_together, len(calls))
    for query in queries:
        assert [c.identifier for c in together[query]] == [c.identifier for c in alone[query]], query
        assert [c.image_ids for c in together[query]] == [c.image_ids for c in alone[query]], query
        assert [c.score for c in together[query]] == pytest.approx([c.score for c in alone[query]], abs=1e-4), query
    embedded = generator.embed(queries)
    assert embedded.shape[0] == len(queries) and np.linalg.norm(embedded, axis=1) == pytest.approx(1.0, abs=1e-5)
    for row, query in enumerate(queries):
        vector, batched = results[query].query_vector, together_results[query].query_vector
        if parts[2].architecture == "causal":  # it reads a text only to continue it: embed falls back to MiniLM
            assert vector is None and batched is None
            assert embedded[row] == pytest.approx(shared_encoder().encode([query])[0], abs=1e-5)
        else:
            assert vector == pytest.approx(embedded[row].tolist(), abs=1e-5) and batched == pytest.approx(vector, abs=1e-5)


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_a_bert_encoder_reads_a_batch_s_prompts_side_by_side_each_exactly_as_alone(parts, precision):
    """Prompts of a batch go through the encoder packed in rows of at most ``PACKED_TOKENS``, each in a slot of its
    own, one traced call per row. Each prompt's states are to the last bit the ones it gets alone, and within float
    error the Hugging Face encoder's. In int8 (where a last-bit change moves scores by a hundredth) so is what the
    decoder's first step makes of them; float32's products of a batch's rows differ from one row's in the last bits."""
    from ssi_plugin.generation import encoding

    _, tokenizer, spec = parts
    if spec.architecture != "seq2seq":
        pytest.skip("a causal model reads its prompt with its decoder: there is no encoder")
    assert [encoding.slot_width(n) for n in (1, 16, 17, 32, 33)] == [16, 16, 32, 32, 48]
    assert encoding.packs([16, 32, 16, 32], limit=64) == [slice(0, 3), slice(3, 4)]
    assert encoding.packs([16, 64], limit=64) == [slice(0, 1), slice(1, 2)]  # a slot wider than a row: alone
    generator = _generator(parts, IDENTIFIERS[:60], precision=precision)
    assert isinstance(generator._encoder._packed, torch.jit.ScriptModule)
    words = [*itertools.islice(itertools.cycle(WORDS), 40)]
    prompts = [tokenizer(" ".join(words[n : n + size]))["input_ids"]  # 1 to 34 tokens: unaligned, several slot widths
               for n, size in enumerate([1, 5, 12, 2, 17, 9, 30, 3, 14, 22, 7, 13, 32, 6, 11, 19, 4, 25, 8, 15])]
    assert sum(map(encoding.slot_width, map(len, prompts))) > encoding.PACKED_TOKENS  # more than one row
    start = torch.full((len(prompts), 1), generator.model.config.decoder_start_token_id)
    with torch.inference_mode():
        batch = generator._encoder.read(prompts, tokenizer.pad_token_id)
        first, _ = generator._steps.start(start, batch.states, batch.mask)
        for row, prompt in enumerate(prompts):
            alone = generator._encoder.read([prompt], tokenizer.pad_token_id)
            assert torch.equal(batch.states[row, : len(prompt)], alone.states[0, : len(prompt)]), row
            assert not batch.states[row, len(prompt) :].any(), row
            first_alone = generator._steps.start(start[:1], alone.states, alone.mask)[0][0]
            assert torch.equal(first[row], first_alone) if precision == "int8" else torch.allclose(first[row], first_alone, atol=1e-5)
            if precision == "float32":
                hugging_face = generator.model.get_encoder()(input_ids=torch.tensor([prompt])).last_hidden_state[0]
                assert torch.allclose(alone.states[0, : len(prompt)], hugging_face, atol=1e-5), row


def test_an_encoder_decoder_s_traced_steps_write_what_its_hugging_face_decoder_writes(parts):
    """The BERT decoder of an encoder-decoder runs as traced calls over a tensor cache: the same identifiers and
    scores as through the model's own cache, alone and batched; a causal model has none."""
    from ssi_plugin.generation.decoder_steps import DecoderSteps

    generator = _generator(parts, IDENTIFIERS[:60], copy_weight=0.5)
    if parts[2].architecture != "seq2seq":
        assert generator._steps is None
        pytest.skip("a causal model decodes through its own cache: there are no traced steps")
    assert isinstance(generator._steps, DecoderSteps)
    queries = ["dog", "a cat jumps on the beach", "the boat and the ball in the street with a tree", "kite park"]
    traced = [generator.generate(query, k=8).candidates for query in queries]
    steps, generator._steps = generator._steps, None
    try:
        eager = [generator.generate(query, k=8).candidates for query in queries]
    finally:
        generator._steps = steps
    for query, mine, theirs in zip(queries, traced, eager, strict=True):
        assert [c.identifier for c in mine] == [c.identifier for c in theirs], query
        assert [c.score for c in mine] == pytest.approx([c.score for c in theirs], abs=1e-5), query


def test_a_trace_that_froze_a_shape_is_refused_and_the_module_runs_op_by_op(caplog):
    from ssi_plugin.generation.tracing import traced

    class FirstHalf(torch.nn.Module):
        def forward(self, rows: torch.Tensor) -> torch.Tensor:
            return rows[: int(rows.shape[0]) // 2]  # a Python int: the tracer records the example's value

    assert traced(FirstHalf(), (torch.ones(4, 2),), (torch.ones(6, 2),), what="the half") is None
    assert "the half runs untraced" in caplog.text and "other shapes" in caplog.text
    doubled = traced(torch.nn.Linear(2, 2), (torch.ones(4, 2),), (torch.ones(6, 2),), what="the layer")
    assert isinstance(doubled, torch.jit.ScriptModule)


def test_a_query_abandoned_while_it_decodes_stops_at_the_next_step_with_its_caller_s_error(parts):
    generator = _generator(parts, IDENTIFIERS, copy_weight=0.5)
    calls: list[int] = []
    with before_each_decoder_call(generator, lambda: calls.append(1)):
        generator.generate("a dog catches a frisbee in the park", k=10)
        whole = len(calls)
        calls.clear()
        with pytest.raises(ConnectionError, match="gone"):
            generator.generate("a dog catches a frisbee in the park", k=10,
                               abandon=lambda: ConnectionError("the engine is gone") if len(calls) >= 2 else None)
    assert whole > 2 and len(calls) == 2, (whole, calls)
