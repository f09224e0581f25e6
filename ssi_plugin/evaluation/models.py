"""The generators an evaluation compares: named folders, trained on demand and cached by content hash.

A variant is either a folder someone trained, or a training configuration;
the folder of a configured variant is ``<models_dir>/<name>-<hash>`` where the
hash covers the configuration and the training examples, so a rerun over the
same index reuses the model, an interrupted training resumes, and any change
of data or settings trains a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ssi_plugin.errors import ConfigError
from ssi_plugin.generation.examples import TrainingExample
from ssi_plugin.generation.spec import SPEC_FILE
from ssi_plugin.generation.training import CHECKPOINT, TrainingConfig
from ssi_plugin.trie.store import FORMAT_VERSION as TRIE_FORMAT_VERSION


class ModelVariant(BaseModel):
    """One generator under evaluation: ``folder`` (already trained) or ``training`` (trained here), not both."""

    model_config = ConfigDict(frozen=True)

    name: str
    family: str | None = Field(default=None, description="Variants of one family differ only in their training seed; "
                               "the report gives their mean. None: the variant stands alone.")
    description: str = ""
    folder: Path | None = None
    training: TrainingConfig | None = None
    search: dict[str, Any] = Field(default_factory=dict, description="Options of the `ssi` clause it searches with "
                                   "(e.g. hybrid), beside the query.")
    trained_as: str | None = Field(default=None, description="The model folder's name stem (default: the variant's "
                                   "name): variants that differ only in how they search share one training.")

    @model_validator(mode="after")
    def _one_source(self) -> ModelVariant:
        if (self.folder is None) == (self.training is None):
            raise ValueError(f"model variant {self.name!r} needs either a folder or a training configuration")
        return self


HYBRID_FAMILY = "ssi+dense"


def default_variants(*, epochs: int | None = None, seeds: int = 1) -> list[ModelVariant]:
    """SSI with RGS, SSI without it (lambda = 0), the GRACE-style numeric ids, with the trainer's defaults, and the SSI
    model searched with a dense leg (``ssi+dense``, no training of its own).

    ``seeds > 1`` trains each of them once per seed (``ssi-seed0``, ``ssi-seed1``, ...): on a few dozen
    images one training's Recall@1 moves by several points with the seed alone, so a comparison
    between them needs the mean.
    """
    base = TrainingConfig() if epochs is None else TrainingConfig(epochs=epochs)
    families = [
        ("ssi", base, f"SSI generator with Rationale-Guided Supervision (lambda = {base.rationale_weight}), "
                      "searched through the engine (exact ids + concepts + the query's own words + the concepts related to "
                      "words no identifier holds + BM25 on the caption, these two unless the generator is sure of the image that "
                      "explains the query best; the first images fused also scored by how close their identifier is in meaning to "
                      "the query; linear fusion)"),
        ("ssi-no-rgs", base.model_copy(update={"rationale_weight": 0.0}),
         "the same SSI generator trained without rationales (lambda = 0)"),
        ("numeric-ids", base.model_copy(update={"identifier_kind": "numeric", "rationale_weight": 0.0}),
         "GRACE-style baseline: arbitrary numeric ids, ranked by constrained beam search alone"),
    ]

    def named(family: str, seed: int) -> str:
        return family if seeds == 1 else f"{family}-seed{seed}"

    trained = [
        ModelVariant(name=named(family, seed), family=family, description=description,
                     training=config.model_copy(update={"seed": seed}))
        for family, config, description in families
        for seed in range(seeds)
    ]
    hybrid = [
        ModelVariant(name=named(HYBRID_FAMILY, seed), family=HYBRID_FAMILY, search={"hybrid": True}, trained_as=named("ssi", seed),
                     description="the SSI generator's lists fused with the engine's kNN search over the caption vectors "
                                 "(the dense leg of a hybrid `ssi` query)",
                     training=base.model_copy(update={"seed": seed}))
        for seed in range(seeds)
    ]
    return [*trained, *hybrid]


def parse_generator_option(text: str) -> ModelVariant:
    """``NAME=FOLDER`` of the command line as a variant."""
    name, sep, folder = text.partition("=")
    if not sep or not name.strip() or not folder.strip():
        raise ConfigError(f"--generator {text!r}: expected NAME=FOLDER")
    path = Path(folder.strip()).expanduser()
    if not (path / SPEC_FILE).is_file():
        raise ConfigError(f"--generator {text!r}: {path} is not a generator folder ({SPEC_FILE} is missing)")
    return ModelVariant(name=name.strip(), folder=path)


def training_hash(config: TrainingConfig, examples: Sequence[TrainingExample]) -> str:
    """Content hash of what decides a trained model folder: the configuration, the examples in order, and the
    layout of the trie saved in it (a folder from before a layout change is trained again, not misread)."""
    payload = {"config": config.model_dump(mode="json"), "examples": [example.model_dump(mode="json") for example in examples],
               "trie_format": TRIE_FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def is_trained(folder: Path) -> bool:
    """A finished generator folder (a spec, and no unfinished checkpoint)."""
    return (folder / SPEC_FILE).is_file() and not (folder / CHECKPOINT).exists()


def ensure_trained(
    variant: ModelVariant,
    examples: Sequence[TrainingExample],
    models_dir: Path,
    *,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> Path:
    """The variant's generator folder, training it (or finishing an interrupted run) when it is not cached."""
    if variant.folder is not None:
        return variant.folder
    assert variant.training is not None
    from ssi_plugin.generation.training import train

    folder = models_dir / f"{variant.trained_as or variant.name}-{training_hash(variant.training, examples)}"
    if is_trained(folder):
        log(f"{variant.name}: reusing the model trained before in {folder}")
        return folder
    log(f"{variant.name}: training on {len(examples)} examples -> {folder}")
    report = train(examples, folder, variant.training, resume=True, progress=progress)
    if report is not None:
        log(f"{variant.name}: {report.steps} steps in {report.seconds:.0f} s, identifier loss {report.final_identifier_loss:.3f}")
    return folder
