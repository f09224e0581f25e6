"""Query -> top-k identifiers of the index, with scores, image ids and weighted concepts.

    generator = Generator.load("models/ssi-default")
    result = generator.generate("a dog catching a frisbee", k=10)
    result.candidates[0].identifier, result.candidates[0].image_ids, result.concepts
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.errors import InputError, InvalidIdentifier, ModelError
from ssi_plugin.generation.batching import Combiner
from ssi_plugin.generation.spec import (
    TRIE_FOLDER,
    GeneratorSpec,
    encode_identifiers,
    prompt_ids,
    tokenizer_fingerprint,
)
from ssi_plugin.identifiers import SLOTS
from ssi_plugin.threads import intra_op_threads
from ssi_plugin.trie import IdentifierTrie, TrieView

if TYPE_CHECKING:
    from ssi_plugin.config import Precision
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
    query_vector: list[float] | None = Field(
        default=None, exclude=True, repr=False,
        description="What the query means to the generator (``Generator.embed``), read in its decoding; None when it "
        "was not decoded, or the model has no encoder.")


def candidate_probabilities(candidates: Iterable[Candidate]) -> dict[str, float]:
    """Softmax of the candidates' sequence scores: how much of the beam's mass each identifier holds."""
    scored = list(candidates)
    if not scored:
        return {}
    top = max(candidate.score for candidate in scored)
    masses = {candidate.identifier: math.exp(candidate.score - top) for candidate in scored}
    total = sum(masses.values())
    return {identifier: mass / total for identifier, mass in masses.items()}


def concept_weights(candidates: Iterable[Candidate]) -> dict[str, float]:
    """Each concept's share of the candidates' probability mass (``candidate_probabilities``); best first.

    Identifiers that are not SSIs (numeric ids of the baseline) contribute nothing.
    """
    weights: dict[str, float] = {}
    for identifier, probability in candidate_probabilities(candidates).items():
        for concept in _concepts_of(identifier):
            weights[concept] = weights.get(concept, 0.0) + probability
    return {concept: round(weight, 6) for concept, weight in sorted(weights.items(), key=lambda item: (-item[1], item[0]))}


@functools.lru_cache(maxsize=1 << 16)
def _concepts_of(identifier: str) -> tuple[str, ...]:
    """The slot-prefixed concepts of an identifier (none for one that is not an SSI): parsed once, since the same
    identifiers come back query after query (parsing validates every concept: 4.5 % of serve's time under load)."""
    from ssi_plugin.identifiers import parse_ssi

    try:
        return tuple(parse_ssi(identifier).concepts)
    except InvalidIdentifier:
        return ()


COPY_WEIGHT = 0.5
"""Share of each decoding step's probability that goes to the query's own words where the trie allows them.

Chosen with ``eval --unseen 0.3`` (seed 0), Recall@1 seen / unseen on the demo set, then on 1,000 queries of the
1,000-image synthetic corpus, with the query-terms list at weight 1.0: 0.3 gave 0.933 / 0.107 and 0.180 / 0.133;
0.5 gave 0.900 / 0.214 and 0.174 / 0.147. Without the prior (and the terms list at 0.4) unseen images came first
for 0.000 and 0.083 of their queries."""


MAX_BATCH = 32
"""Most queries decoded together (``Generator.generate`` from several threads)."""

WORD_TOKENS_CACHE = 65536
"""Query words whose copyable tokens a generator keeps."""


@dataclass(frozen=True)
class _Query:
    """A query ready to decode: its prompt, how many candidates it wants with how many beams, its copyable tokens."""

    prompt: list[int]
    k: int
    beams: int
    copy_tokens: np.ndarray | None


@dataclass(frozen=True)
class _Decoded:
    """A query's candidates (None: the trie was empty) and, from an encoder-decoder, its encoder's vector."""

    candidates: list[Candidate] | None
    query_vector: np.ndarray | None = None


class _Decoding:
    """Everything a query decodes against, made once per trie: a running batch keeps the one it started with."""

    def __init__(self, trie: TrieView, head: Any) -> None:
        import torch

        from ssi_plugin.generation.constraint import AllowedColumns, TokenProjection

        self.trie = trie
        empty = len(trie) == 0
        self.columns = None if empty else AllowedColumns(trie, vocab_size=head.out_features, vocabulary=trie.vocabulary)
        self.project = None if empty else TokenProjection(head, torch.from_numpy(trie.vocabulary.astype("int64")))

    def copyable(self, tokens: np.ndarray | None) -> Any:
        """The columns of ``tokens`` as a flag per column, for a copy prior; None when the trie uses none of them."""
        import torch

        if tokens is None:
            return None
        flags = np.isin(self.trie.vocabulary, tokens)
        return torch.from_numpy(flags) if flags.any() else None


class Generator:
    """A fine-tuned model plus the trie of identifiers it may write.

    ``threads`` is how many intra-op threads torch uses while ``generate`` runs
    (restored afterwards). One by default: a decoding step of a small model is
    too short to split, and on a busy 2-core machine a second thread
    spin-waits and makes queries several times slower (``benchmarks/generation.py``
    measures both). ``None`` leaves torch's setting alone.

    ``copy_weight`` is the share of each step's probability given to the query's
    own words (a copy prior, ``beam_search``): it lets the generator name images ingested after
    its training. 0 turns it off; numeric identifiers never use it.

    ``use_trie`` may be called while queries run (a live index): each batch of
    queries decodes against the trie it started with. The model is never modified after
    construction; its output layer is a ``HiddenStatesHead`` and each trie comes
    with its own projection.
    """

    def __init__(self, model: Any, tokenizer: Any, spec: GeneratorSpec, trie: IdentifierTrie | TrieView, *,
                 threads: int | None = 1, copy_weight: float = COPY_WEIGHT) -> None:
        import torch

        from ssi_plugin.generation.constraint import HiddenStatesHead, output_layer_path, set_output_layer
        from ssi_plugin.generation.decoder_steps import DecoderSteps
        from ssi_plugin.generation.encoding import PromptEncoder

        if threads is not None and threads < 1:
            raise ModelError(f"threads must be at least 1, got {threads}")
        if not 0 <= copy_weight < 1:
            raise ModelError(f"copy_weight must be within [0, 1), got {copy_weight}")
        self.threads = threads
        self.copy_weight = copy_weight if spec.identifier_kind == "ssi" else 0.0
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.spec = spec
        self._head_path = output_layer_path(model)
        layer = model.get_submodule(self._head_path)
        head = layer.original if isinstance(layer, HiddenStatesHead) else layer
        assert isinstance(head, torch.nn.Linear), "output_layer_path finds a Linear layer or a HiddenStatesHead"
        self._head = head
        set_output_layer(model, HiddenStatesHead(self._head), path=self._head_path)
        self._structure_tokens = np.unique(encode_identifiers(tokenizer, [" ".join([*SLOTS, ":", ",", "|", "#"])])[0])
        """The identifier grammar's own tokens (slot names, separators): never copied from a query."""
        self._word_tokens = functools.lru_cache(maxsize=WORD_TOKENS_CACHE)(self._tokens_of_word)
        """A word's copyable tokens, kept: the words of queries repeat."""
        self._encoder = PromptEncoder(model.get_encoder()) if spec.architecture == "seq2seq" else None
        self._pad_token_id = tokenizer.pad_token_id or 0
        self._steps = DecoderSteps.of(model)
        self._combined = Combiner(self._decode, limit=MAX_BATCH)
        self.use_trie(trie)

    @classmethod
    def load(cls, folder: str | Path, *, trie: IdentifierTrie | TrieView | None = None, threads: int | None = 1,
             copy_weight: float = COPY_WEIGHT, precision: Precision | None = None) -> Generator:
        """Load a generator folder; its ``trie/`` unless ``trie`` is given (e.g. rebuilt from an index).

        ``precision``: int8 or float32 (``ssi_plugin.generation.precision``); None: the ``SSI_PRECISION`` setting,
        int8 unless set.
        """
        from transformers import (
            AutoModelForCausalLM,
            AutoModelForSeq2SeqLM,
            AutoTokenizer,
        )

        from ssi_plugin.config import generator_precision
        from ssi_plugin.generation.constraint import output_layer_path
        from ssi_plugin.generation.precision import with_precision
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
        model = with_precision(model, generator_precision(precision), keep=output_layer_path(model))
        try:
            return cls(model, tokenizer, spec, trie, threads=threads, copy_weight=copy_weight)
        except ModelError as exc:
            raise ModelError(f"generator {folder}: {exc}") from None

    @property
    def precision(self) -> Precision:
        """How the model computes: int8 or float32 (``ssi_plugin.generation.precision``)."""
        from ssi_plugin.generation.precision import is_quantized

        return "int8" if is_quantized(self.model) else "float32"

    @property
    def trie(self) -> TrieView:
        """The identifiers the generator decodes against now."""
        return self._decoding.trie

    def use_trie(self, trie: IdentifierTrie | TrieView) -> None:
        """Decode against ``trie`` from the next query on (an index changed: no retraining needed)."""
        view = trie if isinstance(trie, TrieView) else TrieView(trie)
        if view.tokenizer_fingerprint != self.spec.tokenizer_fingerprint:
            raise ModelError(
                f"the identifier trie was built for another tokenizer (fingerprint {view.tokenizer_fingerprint}) than the "
                f"generator's ({self.spec.tokenizer_fingerprint}); rebuild it with this model's tokenizer"
            )
        if view.end_token_id != self.spec.end_token_id:
            raise ModelError(f"the trie closes identifiers with token {view.end_token_id}, the model with {self.spec.end_token_id}")
        self._decoding = _Decoding(view, self._head)  # one assignment: queries see the old trie or the new one

    def save(self, folder: str | Path) -> None:
        """Write model, tokenizer, spec and trie (its pairs merged into one) as a folder ``Generator.load`` reads."""
        from ssi_plugin.generation.constraint import HiddenStatesHead, set_output_layer
        from ssi_plugin.generation.precision import is_quantized

        if is_quantized(self.model):
            raise ModelError("a generator loaded in int8 cannot be saved: load it with precision='float32' (SSI_PRECISION)")
        view = self.trie
        trie = view.base if view.delta is None and not view.removed else self.build_trie(view.pairs())
        set_output_layer(self.model, self._head, path=self._head_path)
        try:
            save_folder(Path(folder), model=self.model, tokenizer=self.tokenizer, spec=self.spec, trie=trie)
        finally:
            set_output_layer(self.model, HiddenStatesHead(self._head), path=self._head_path)

    def build_trie(self, pairs: Iterable[tuple[str, str]], *, heavy_threshold: int = 32) -> IdentifierTrie:
        """A trie of ``(identifier, image_id)`` pairs tokenized for this model (use with ``use_trie``/``save``)."""
        return build_trie(self.tokenizer, pairs, heavy_threshold=heavy_threshold)

    def generate(self, query: str, k: int = 10, *, beams: int | None = None,
                 abandon: Callable[[], BaseException | None] | None = None) -> GenerationResult:
        """The ``k`` best identifiers for ``query`` (beam search with ``max(k, beams)`` beams).

        Thread-safe: queries asked at the same time from several threads decode together (``MAX_BATCH`` at most).
        ``abandon`` is asked when the query's batch is formed and at each decoding step: an error it returns is
        raised instead of decoding on (e.g. the engine the identifiers are for was found gone meanwhile).
        """
        if not isinstance(query, str) or not query.strip():
            raise InputError("the query is empty")
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        query = " ".join(query.split())
        prompt, query_tokens, truncated = prompt_ids(self.tokenizer, self.spec, query)
        notes = [f"the query has {query_tokens} tokens; only the first {self.spec.max_query_tokens} were used"] if truncated else []
        answer = functools.partial(GenerationResult, query=query, query_tokens=query_tokens, truncated=truncated)
        if self.tokenizer.unk_token_id in prompt and self._all_unknown(self.tokenizer(query)["input_ids"]):
            return answer(candidates=[], warnings=[*notes, "no word of the query is in the model's vocabulary"])
        decoded = self._combined(_Query(prompt=prompt, k=k, beams=max(k, beams or k), copy_tokens=self._copy_tokens(query)),
                                 abandon=abandon)
        if decoded.candidates is None:
            return answer(candidates=[], warnings=[*notes, "the identifier trie is empty: nothing can be retrieved"])
        vector = decoded.query_vector.tolist() if decoded.query_vector is not None else None
        return answer(candidates=decoded.candidates, concepts=concept_weights(decoded.candidates), warnings=notes,
                      query_vector=vector)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of what ``texts`` mean to the generator, one row each: its encoder's states averaged over the
        tokens (``EncodedPrompts.meanings``; ``generate`` gives a query's in its result, read in its decoding). A
        causal model reads a text only to continue it, so there they are all-MiniLM-L6-v2's sentence vectors."""
        import torch

        if self._encoder is None:
            from ssi_plugin.embedding import shared_encoder

            return shared_encoder().encode(texts)
        if not texts:
            return np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        prompts = [prompt_ids(self.tokenizer, self.spec, " ".join(text.split()))[0] for text in texts]
        with torch.inference_mode():
            return self._encoder.read(prompts, self._pad_token_id).meanings().numpy()

    def _decode(self, queries: list[_Query], gone: Callable[[int], bool]) -> list[_Decoded]:
        """One batched beam search over the trie of the moment (no candidates when it is empty); a query ``gone``
        (its caller abandoned it) is dropped at the next step."""
        import torch

        from ssi_plugin.generation.beam_search import DecodeRequest, constrained_beam_search

        decoding = self._decoding
        if decoding.columns is None or decoding.project is None:
            return [_Decoded(None)] * len(queries)
        requests = [DecodeRequest(prompt=query.prompt, beams=query.beams, copyable=decoding.copyable(query.copy_tokens))
                    for query in queries]
        config = self.model.config
        with intra_op_threads(self.threads), torch.inference_mode():
            encoded = (self._encoder.read([query.prompt for query in queries], self._pad_token_id)
                       if self._encoder is not None else None)
            found = constrained_beam_search(
                self.model, requests, decoding.trie, columns=decoding.columns, project=decoding.project,
                max_tokens=self.spec.max_identifier_tokens + 1, encoded=encoded, steps=self._steps,
                start_token_id=getattr(config, "decoder_start_token_id", None),
                pad_token_id=self._pad_token_id, copy_weight=self.copy_weight, gone=gone,
            )
            vectors = encoded.meanings().numpy() if encoded is not None else [None] * len(queries)
        return [_Decoded(_candidates(decoding.trie, hypotheses)[: query.k], vector)
                for query, hypotheses, vector in zip(queries, found, vectors, strict=True)]

    def _copy_tokens(self, query: str) -> np.ndarray | None:
        """The tokens of the query's words and their lemmas that a copy prior may favour (never the grammar's own)."""
        from ssi_plugin.identifiers import query_concepts

        if not self.copy_weight:
            return None
        words = [concept for concept in query_concepts(query) if " " not in concept and concept not in SLOTS]
        if not words:
            return None
        return np.unique(np.fromiter(chain.from_iterable(map(self._word_tokens, words)), dtype=np.int64))

    def _tokens_of_word(self, word: str) -> tuple[int, ...]:
        tokens = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        return tuple(np.setdiff1d(np.asarray(tokens, dtype=np.int64), self._structure_tokens).tolist())

    def _all_unknown(self, query_ids: list[int]) -> bool:
        unknown = self.tokenizer.unk_token_id
        words = [t for t in query_ids if t not in self.tokenizer.all_special_ids or t == unknown]
        return unknown is not None and bool(words) and all(t == unknown for t in words)


def _candidates(trie: TrieView, hypotheses: list[Hypothesis]) -> list[Candidate]:
    """The identifiers of finished hypotheses that still name an image, best first, each once."""
    found: dict[str, Candidate] = {}
    for hypothesis in hypotheses:
        for entry in trie.entries_for(hypothesis.tokens):
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
