"""Query -> top-k identifiers of the index, with scores, image ids and weighted concepts.

    generator = Generator.load("models/ssi-default")
    result = generator.generate("a dog catching a frisbee", k=10)
    result.candidates[0].identifier, result.candidates[0].image_ids, result.concepts
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.errors import InputError, InvalidIdentifier, ModelError
from ssi_plugin.generation.spec import (
    TRIE_FOLDER,
    GeneratorSpec,
    prompt_ids,
    tokenizer_fingerprint,
)
from ssi_plugin.threads import intra_op_threads
from ssi_plugin.trie import IdentifierTrie

if TYPE_CHECKING:
    from ssi_plugin.generation.beam_search import Hypothesis


class Candidate(BaseModel):
    """One generated identifier that exists in the trie."""

    model_config = ConfigDict(frozen=True)

    identifier: str
    score: float = Field(description="The identifier's log-probability among the identifiers of the trie.")
    image_ids: tuple[str, ...]


class GenerationResult(BaseModel):
    """Candidates best first, and slot-prefixed concepts weighted by how much probability supports them."""

    query: str
    candidates: list[Candidate]
    concepts: dict[str, float] = Field(
        default_factory=dict, description="e.g. {'objects:dog': 0.93}: softmax of candidate scores summed per concept."
    )
    query_tokens: int
    truncated: bool = False
    warnings: list[str] = Field(default_factory=list)


def concept_weights(candidates: Iterable[Candidate]) -> dict[str, float]:
    """Each concept's share of the candidates' probability mass (softmax over scores); best first.

    Identifiers that are not SSIs (numeric ids of the baseline) contribute nothing.
    """
    from ssi_plugin.identifiers import parse_ssi

    scored = list(candidates)
    if not scored:
        return {}
    top = max(candidate.score for candidate in scored)
    masses = [math.exp(candidate.score - top) for candidate in scored]
    total = sum(masses)
    weights: dict[str, float] = {}
    for candidate, mass in zip(scored, masses, strict=True):
        try:
            concepts = parse_ssi(candidate.identifier).concepts
        except InvalidIdentifier:
            continue
        for concept in concepts:
            weights[concept] = weights.get(concept, 0.0) + mass / total
    return {concept: round(weight, 6) for concept, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0]))}


class Generator:
    """A fine-tuned model plus the trie of identifiers it may write.

    ``threads`` is how many intra-op threads torch uses while ``generate`` runs
    (restored afterwards). One by default: a decoding step of a small model is
    too short to split, and on a busy 2-core machine a second thread
    spin-waits and makes queries several times slower (``benchmarks/generation.py``
    measures both). ``None`` leaves torch's setting alone.
    """

    def __init__(self, model: Any, tokenizer: Any, spec: GeneratorSpec, trie: IdentifierTrie, *, threads: int | None = 1) -> None:
        from ssi_plugin.generation.constraint import RestrictedHead, output_layer_path

        if threads is not None and threads < 1:
            raise ModelError(f"threads must be at least 1, got {threads}")
        self.threads = threads
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self._head_path = output_layer_path(model)
        layer = model.get_submodule(self._head_path)
        self._head = layer.original if isinstance(layer, RestrictedHead) else layer
        self.trie = trie
        self.use_trie(trie)

    @classmethod
    def load(cls, folder: str | Path, *, trie: IdentifierTrie | None = None, threads: int | None = 1) -> Generator:
        """Load a generator folder; its ``trie/`` unless ``trie`` is given (e.g. rebuilt from an index)."""
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        from ssi_plugin.quiet import quiet_weight_loading

        quiet_weight_loading()
        folder = Path(folder)
        spec = GeneratorSpec.load(folder)
        if trie is None:
            trie = IdentifierTrie.load(folder / TRIE_FOLDER)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if tokenizer_fingerprint(tokenizer) != spec.tokenizer_fingerprint:
            raise ModelError(f"the tokenizer in {folder} does not match its {folder / 'generator.json'}")
        auto = AutoModelForSeq2SeqLM if spec.architecture == "seq2seq" else AutoModelForCausalLM
        model = auto.from_pretrained(folder)
        return cls(model, tokenizer, spec, trie, threads=threads)

    def use_trie(self, trie: IdentifierTrie) -> None:
        """Decode against ``trie`` from now on (an index changed: no retraining needed)."""
        from ssi_plugin.generation.constraint import (
            AllowedColumns,
            RestrictedHead,
            set_output_layer,
            trie_token_ids,
        )

        if trie.manifest.tokenizer_fingerprint != self.spec.tokenizer_fingerprint:
            raise ModelError("the identifier trie was built for another tokenizer; rebuild it with this model's tokenizer")
        if trie.end_token_id != self.spec.end_token_id:
            raise ModelError(f"the trie closes identifiers with token {trie.end_token_id}, the model with {self.spec.end_token_id}")
        if len(trie):
            columns = AllowedColumns(trie, vocab_size=self._head.out_features, vocabulary=trie.tokens.vocabulary)
            set_output_layer(self.model, RestrictedHead(self._head, trie_token_ids(trie)), path=self._head_path)
        else:
            columns = None
            set_output_layer(self.model, self._head, path=self._head_path)
        self.trie = trie
        self._columns = columns

    def save(self, folder: str | Path) -> None:
        """Write model, tokenizer, spec and trie as a folder ``Generator.load`` reads."""
        from ssi_plugin.generation.constraint import set_output_layer

        set_output_layer(self.model, self._head, path=self._head_path)
        try:
            save_folder(Path(folder), model=self.model, tokenizer=self.tokenizer, spec=self.spec, trie=self.trie)
        finally:
            self.use_trie(self.trie)

    def build_trie(self, pairs: Iterable[tuple[str, str]], *, heavy_threshold: int = 32) -> IdentifierTrie:
        """A trie of ``(identifier, image_id)`` pairs tokenized for this model (use with ``use_trie``/``save``)."""
        return build_trie(self.tokenizer, pairs, heavy_threshold=heavy_threshold)

    def generate(self, query: str, k: int = 10, *, beams: int | None = None) -> GenerationResult:
        """The ``k`` best identifiers for ``query`` (beam search with ``max(k, beams)`` beams)."""
        import torch

        from ssi_plugin.generation.beam_search import constrained_beam_search

        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        query = " ".join(query.split())
        prompt, query_tokens, truncated = prompt_ids(self.tokenizer, self.spec, query)
        notes = [f"the query has {query_tokens} tokens; only the first {self.spec.max_query_tokens} were used"] if truncated else []
        if self._columns is None:
            return GenerationResult(query=query, candidates=[], query_tokens=query_tokens, truncated=truncated,
                                    warnings=[*notes, "the identifier trie is empty: nothing can be retrieved"])
        if self._all_unknown(self.tokenizer(query)["input_ids"]):
            return GenerationResult(query=query, candidates=[], query_tokens=query_tokens, truncated=truncated,
                                    warnings=[*notes, "no word of the query is in the model's vocabulary"])
        config = self.model.config
        with intra_op_threads(self.threads), torch.inference_mode():
            hypotheses = constrained_beam_search(
                self.model, prompt, self.trie, columns=self._columns, beams=max(k, beams or k),
                max_tokens=self.spec.max_identifier_tokens + 1, seq2seq=self.spec.architecture == "seq2seq",
                start_token_id=getattr(config, "decoder_start_token_id", None),
            )
        candidates = self._candidates(hypotheses)[:k]
        return GenerationResult(query=query, candidates=candidates, concepts=concept_weights(candidates),
                                query_tokens=query_tokens, truncated=truncated, warnings=notes)

    def _all_unknown(self, query_ids: list[int]) -> bool:
        unknown = self.tokenizer.unk_token_id
        words = [t for t in query_ids if t not in self.tokenizer.all_special_ids or t == unknown]
        return unknown is not None and bool(words) and all(t == unknown for t in words)

    def _candidates(self, hypotheses: list[Hypothesis]) -> list[Candidate]:
        found: dict[str, Candidate] = {}
        for hypothesis in hypotheses:
            for entry in self.trie.entries_for(hypothesis.tokens):
                if entry.identifier not in found:
                    found[entry.identifier] = Candidate(identifier=entry.identifier, score=hypothesis.score, image_ids=entry.image_ids)
        return list(found.values())


def save_folder(folder: Path, *, model: Any, tokenizer: Any, spec: GeneratorSpec, trie: IdentifierTrie) -> None:
    """The on-disk generator: ``save_pretrained`` files, ``generator.json`` and ``trie/``."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    spec.save(folder)
    trie.save(folder / TRIE_FOLDER)


def build_trie(tokenizer: Any, pairs: Iterable[tuple[str, str]], *, heavy_threshold: int = 32) -> IdentifierTrie:
    """The trie of ``(identifier, image_id)`` pairs for ``tokenizer``, e.g. from an index scroll."""
    from ssi_plugin.generation.spec import encode_identifiers_batch, end_token_of

    return IdentifierTrie.build(
        pairs,
        encode=lambda identifiers: encode_identifiers_batch(tokenizer, identifiers),
        end_token_id=end_token_of(tokenizer),
        tokenizer_fingerprint=tokenizer_fingerprint(tokenizer),
        heavy_threshold=heavy_threshold,
    )


def build_trie_for_folder(folder: str | Path, pairs: Iterable[tuple[str, str]], *, heavy_threshold: int = 32) -> IdentifierTrie:
    """Rebuild and save ``folder/trie`` from pairs, loading only the tokenizer (no model)."""
    from transformers import AutoTokenizer

    folder = Path(folder)
    GeneratorSpec.load(folder)
    trie = build_trie(AutoTokenizer.from_pretrained(folder), pairs, heavy_threshold=heavy_threshold)
    trie.save(folder / TRIE_FOLDER)
    return trie
