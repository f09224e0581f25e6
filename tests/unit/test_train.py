"""Training on tiny models: it memorises, resumes to the same weights, writes a usable folder, refuses clobbering."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file
from tiny_models import tiny_model

from ssi_plugin.cli import cli
from ssi_plugin.errors import ConfigError, InputError
from ssi_plugin.generation.examples import TrainingExample, read_examples
from ssi_plugin.generation.generator import Generator
from ssi_plugin.generation.training import TrainingConfig, train

PAIRS = [
    ("a dog catches a frisbee in the park", "objects: dog, frisbee | actions: catch | scene: park", "A dog with a frisbee."),
    ("a cat sleeps on a sofa", "objects: cat, sofa | actions: sleep | scene: room", "A cat on a sofa."),
    ("boats sail on the blue sea", "objects: boat | actions: sail | scene: sea", "Boats on the sea."),
    ("a man rides a bike down the street", "objects: bike, man | actions: ride | scene: street", "A man on a bike."),
]
EXAMPLES = [TrainingExample(text=t, identifier=i, rationale=r, image_id=f"img-{n}") for n, (t, i, r) in enumerate(PAIRS)]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=["seq2seq", "causal"])
def base(request, tmp_path_factory) -> Path:
    texts = [word for triple in PAIRS for word in triple] + ["0 1 2 3 4 5 6 7 8 9"]
    model, tokenizer = tiny_model(texts, architecture=request.param)
    folder = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(base: Path, **overrides) -> TrainingConfig:
    settings = {"base": str(base), "epochs": 60, "batch_size": 4, "learning_rate": 1e-2, "warmup_ratio": 0.0, "seed": 3}
    return TrainingConfig(**{**settings, **overrides})


def test_a_trained_model_writes_the_identifier_of_its_captions(base: Path, tmp_path: Path):
    report = train(EXAMPLES, tmp_path / "gen", _config(base), progress=False)
    assert report.steps == 60 and report.images == 4 and report.examples_per_second > 0
    assert report.history[-1].identifier_loss < report.history[0].identifier_loss / 5
    assert all(point.rationale_loss is not None for point in report.history)
    assert (tmp_path / "gen" / "loss_curves.png").read_bytes()[:4] == b"\x89PNG"
    assert not (tmp_path / "gen" / "checkpoint").exists()
    generator = Generator.load(tmp_path / "gen")
    for n, (text, identifier, _) in enumerate(PAIRS):
        top = generator.generate(text, k=2).candidates[0]
        assert (top.identifier, top.image_ids) == (identifier, (f"img-{n}",))
    with pytest.raises(ConfigError, match="already holds"):
        train(EXAMPLES, tmp_path / "gen", _config(base), progress=False)


def test_an_interrupted_run_resumes_to_the_same_weights(base: Path, tmp_path: Path):
    config = _config(base, epochs=3, batch_size=2, checkpoint_every=100)
    train(EXAMPLES, tmp_path / "whole", config, progress=False)
    assert train(EXAMPLES, tmp_path / "parts", config, progress=False, stop_after=4) is None
    assert json.loads((tmp_path / "parts" / "checkpoint" / "state.json").read_text())["step"] == 4
    with pytest.raises(ConfigError, match="other settings"):
        train(EXAMPLES, tmp_path / "parts", _config(base, epochs=4, batch_size=2), progress=False)
    with pytest.raises(ConfigError, match="unfinished run"):
        train(EXAMPLES, tmp_path / "parts", config, progress=False, resume=False)
    report = train(EXAMPLES, tmp_path / "parts", config, progress=False)
    assert report.resumed_from_step == 4 and len(report.history) == report.steps == 6
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    parts = load_file(str(tmp_path / "parts" / "model.safetensors"))
    assert whole.keys() == parts.keys()
    assert all((whole[name] - parts[name]).abs().max() < 1e-5 for name in whole)


def test_lambda_zero_trains_without_rationales_and_numeric_ids_give_the_baseline(base: Path, tmp_path: Path):
    report = train(EXAMPLES, tmp_path / "grace", _config(base, rationale_weight=0.0, identifier_kind="numeric"), progress=False)
    assert all(point.rationale_loss is None for point in report.history)
    generator = Generator.load(tmp_path / "grace")
    identifiers = set(generator.trie.base.index)
    assert identifiers == {"1", "2", "3", "4"}
    top = generator.generate(PAIRS[2][0], k=1).candidates[0]
    assert top.image_ids == ("img-2",) and top.identifier.isdigit()
    assert generator.spec.identifier_kind == "numeric"


def test_lora_training_saves_a_plain_merged_model(base: Path, tmp_path: Path):
    config = _config(base, epochs=2, lora={"r": 4, "alpha": 8, "target_modules": "all-linear"})
    train(EXAMPLES, tmp_path / "lora", config, progress=False)
    assert not (tmp_path / "lora" / "adapter_config.json").exists()
    assert Generator.load(tmp_path / "lora").generate("a dog", k=2).candidates


def test_jsonl_examples_and_the_train_command(base: Path, tmp_path: Path):
    data = tmp_path / "pairs.jsonl"
    lines = [
        {"id": "img-0", "captions": [PAIRS[0][0], "a dog and a frisbee"], "ssi": {"id": PAIRS[0][1], "rationale": PAIRS[0][2]}},
        {"text": PAIRS[1][0], "identifier": PAIRS[1][1]},
    ]
    data.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    examples = list(read_examples(data))
    assert [e.text for e in examples] == [PAIRS[0][0], "a dog and a frisbee", PAIRS[1][0]]
    assert examples[0].image_id == "img-0" and examples[0].rationale == PAIRS[0][2] and examples[2].image_id is None
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "no identifier"}\n')
    with pytest.raises(InputError, match=r"bad\.jsonl:1"):
        list(read_examples(bad))
    with pytest.raises(InputError, match="no training examples"):
        train([], tmp_path / "none", _config(base), progress=False)

    result = CliRunner().invoke(cli, ["train", "--data", str(data), "--out", str(tmp_path / "cli"), "--base", str(base),
                                      "--epochs", "1", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    assert "Loss curves" in result.output
    assert dict(Generator.load(tmp_path / "cli").trie.base.index.items())[PAIRS[1][1]] == (PAIRS[1][1],)


def test_a_frozen_encoder_keeps_its_weights_while_the_decoder_learns(base: Path, tmp_path: Path):
    if not (base / "config.json").read_text().count('"is_encoder_decoder": true'):
        pytest.skip("only a seq2seq model has an encoder to freeze")
    report = train(EXAMPLES, tmp_path / "frozen", _config(base, encoder_learning_rate=0.0), progress=False)
    assert report.history[-1].identifier_loss < report.history[0].identifier_loss / 5
    before = load_file(str(base / "model.safetensors"))
    after = load_file(str(tmp_path / "frozen" / "model.safetensors"))
    encoder = [name for name in before if name.startswith("encoder.")]
    decoder = [name for name in before if name.startswith("decoder.") and "crossattention" in name]
    assert encoder and decoder
    assert all(before[name].equal(after[name]) for name in encoder)
    assert not all(before[name].equal(after[name]) for name in decoder)


def test_word_dropout_is_seeded_and_changes_what_the_model_learns(base: Path, tmp_path: Path):
    def weights(name: str, **overrides) -> dict:
        train(EXAMPLES, tmp_path / name, _config(base, epochs=3, **overrides), progress=False)
        return load_file(str(tmp_path / name / "model.safetensors"))

    dropped, again, whole = weights("a", word_dropout=0.5), weights("b", word_dropout=0.5), weights("c", word_dropout=0.0)
    assert all(dropped[name].equal(again[name]) for name in dropped)
    assert not all(dropped[name].equal(whole[name]) for name in dropped)


def test_word_dropout_trains_on_a_text_of_blanks(base: Path, tmp_path: Path):
    blank = TrainingExample(text="   ", identifier="objects: cloud", image_id="img-blank")  # no word to drop or keep
    report = train([*EXAMPLES, blank], tmp_path / "m", _config(base, epochs=2, word_dropout=0.5), progress=False)
    assert report is not None and report.images == len(EXAMPLES) + 1
