"""Trie-constrained beam search that scores only the trie's tokens and ends a beam once one identifier extends it.

Why not ``model.generate`` with ``TrieConstraint``: under the constraint a
token the trie forces has probability 1, and once a prefix is extended by a
single identifier every remaining token is forced. ``generate`` still runs the
decoder for each of them (an SSI is 15-30 tokens, its distinguishing part a
few), takes top-k over the whole vocabulary at every step and keeps a beam's
slot busy until its last token. Here such a beam is finished at once with the
same score, the search stops as soon as no live beam can beat the ``beams``-th
finished one (scores are log-probabilities, so they only fall), and each step
scores just the tokens that occur in the trie. The result is the same ranking
of identifiers by log-probability within the trie, at a fraction of the steps.

It drives any Hugging Face encoder-decoder (the encoder runs once) or causal LM
(the prompt is encoded once) through its key/value cache.

Queries that arrive together decode as one batch: every model call runs the
live beams of all of them, so a second query costs little more than one more row
of each matrix product (a small decoder's step is dominated by reading its
weights), and each query still gets the ranking and scores it would get alone: what
a call computes for a row never depends on the other rows (the tokens the trie
forces at the start, the same for every query, are read in the first call).

A copy prior lets probability reach identifiers the model never wrote in
training: where the trie allows tokens of the query's own words, a share of each
step's probability goes to them (a mixture, so scores stay log-probabilities).
A model fine-tuned on a few hundred captions gives a word it never wrote as a
target almost no probability, whatever the query says; with the prior, an image
ingested after training is named by the words a query shares with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from ssi_plugin.generation.constraint import AllowedColumns, log_softmax_over
from ssi_plugin.generation.decoder_steps import DecoderSteps, StepCache
from ssi_plugin.generation.encoding import EncodedPrompts, padded
from ssi_plugin.trie import TrieView, encode_tokens

if TYPE_CHECKING:
    from transformers import Cache


@dataclass(frozen=True)
class Hypothesis:
    """A finished identifier: its token ids (ending in the end token) and log-probability within the trie."""

    tokens: tuple[int, ...]
    score: float


@dataclass(frozen=True)
class DecodeRequest:
    """One query of a batch: its prompt ids, how many identifiers it wants, and the columns its copy prior may
    favour (one flag per column; None: no prior)."""

    prompt: list[int]
    beams: int
    copyable: torch.Tensor | None = None


@dataclass(frozen=True)
class _CopyPrior:
    """``weight`` of each step's probability shared evenly by the allowed columns that are the row's query's own
    tokens (``copyable``: one row of flags per query); a step that allows none of them keeps the model's distribution."""

    copyable: torch.Tensor
    weight: float

    @classmethod
    def of(cls, requests: Sequence[DecodeRequest], weight: float, *, columns: int) -> _CopyPrior | None:
        if not weight or all(request.copyable is None for request in requests):
            return None
        none = torch.zeros(columns, dtype=torch.bool)
        return cls(torch.stack([none if r.copyable is None else r.copyable for r in requests]), weight)

    def mix(self, log_probs: torch.Tensor, rows: torch.Tensor, picked: torch.Tensor, *, queries: torch.Tensor) -> torch.Tensor:
        """``log((1 - w) p + w q)`` of each entry, where ``q`` is uniform over the row's copyable entries."""
        copyable = self.copyable[queries[rows], picked]
        if not bool(copyable.any()):
            return log_probs
        counts = torch.zeros(len(queries)).index_add_(0, rows, copyable.float())[rows]
        copied = torch.where(copyable, math.log(self.weight) - counts.clamp(min=1).log(), float("-inf"))
        mixed = torch.logaddexp(log_probs + math.log1p(-self.weight), copied)
        return torch.where(counts > 0, mixed, log_probs)


@dataclass(frozen=True)
class _Beam:
    query: int
    tokens: tuple[int, ...]
    score: float


class _CachedDecoder:
    """One model step for the beams of a batch of queries, whose key/value cache follows the beams chosen at each step.

    An encoder-decoder attends to its encoder's reading of the prompts (``encoded``), right-padded under their
    attention mask; a causal model (no ``encoded``) takes them left-padded, with an attention mask and
    positions that skip the padding. ``project`` turns the model's last output (hidden states, under a
    ``HiddenStatesHead``) into column scores.
    """

    def __init__(self, model: Any, prompts: Sequence[list[int]], *, encoded: EncodedPrompts | None,
                 start_token_id: int | None, pad_token_id: int, project: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._model = model
        self._project = project
        self._seq2seq = encoded is not None
        self._cache: Cache | None = None
        self._queries = torch.arange(len(prompts))
        """The query of each row of the next model call."""
        if encoded is not None:
            assert start_token_id is not None, "an encoder-decoder's decoder starts from its decoder_start_token_id"
            self._memory, self._memory_mask = encoded.states, encoded.mask
            self._first = torch.full((len(prompts), 1), start_token_id, dtype=torch.long)
        else:
            self._first, self._mask = padded(prompts, pad_token_id, left=True)

    def first(self, forced: tuple[int, ...]) -> torch.Tensor:
        """Scores of the token after the ``forced`` first tokens, one row per query, shape ``(queries, columns)``."""
        self._grow_mask(len(forced))
        return self._run(_followed_by(self._first, forced))

    def next(self, origins: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Scores after appending the row ``tokens[i]`` to the beam that was row ``origins[i]``."""
        assert self._cache is not None, "next() follows first()"
        self._cache.reorder_cache(cast(torch.LongTensor, origins))  # any integer tensor indexes the beams
        self._queries = self._queries[origins]
        if not self._seq2seq:
            self._mask = self._mask[origins]
        self._grow_mask(tokens.shape[1])
        return self._run(tokens)

    def _grow_mask(self, tokens: int) -> None:
        """A causal model's attention mask covers the ``tokens`` each row is about to take."""
        if not self._seq2seq:
            self._mask = torch.cat([self._mask, torch.ones(self._mask.shape[0], tokens, dtype=torch.long)], dim=1)

    def _run(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self._seq2seq:
            output = self._model(
                encoder_outputs=(self._memory[self._queries],),
                attention_mask=self._memory_mask[self._queries],
                decoder_input_ids=input_ids,
                cache=self._cache,
                use_cache=True,
            )
        else:
            positions = (self._mask.cumsum(dim=1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
            output = self._model(input_ids=input_ids, attention_mask=self._mask, position_ids=positions,
                                 cache=self._cache, use_cache=True)
        self._cache = output.cache
        return self._project(output.logits[:, -1, :])


class _SteppedDecoder:
    """What ``_CachedDecoder`` does for an encoder-decoder, through its ``DecoderSteps`` (one traced call each)."""

    def __init__(self, steps: DecoderSteps, prompts: Sequence[list[int]], *, encoded: EncodedPrompts, start_token_id: int,
                 project: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._steps = steps
        self._project = project
        self._memory, self._memory_mask = encoded.states, encoded.mask
        self._start = torch.full((len(prompts), 1), start_token_id, dtype=torch.long)
        self._cache: StepCache | None = None

    def first(self, forced: tuple[int, ...]) -> torch.Tensor:
        last, self._cache = self._steps.start(_followed_by(self._start, forced), self._memory, self._memory_mask)
        return self._project(last)

    def next(self, origins: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        assert self._cache is not None, "next() follows first()"
        last, self._cache = self._steps.step(self._cache, origins, tokens)
        return self._project(last)


def _followed_by(first: torch.Tensor, forced: tuple[int, ...]) -> torch.Tensor:
    """Each row of ``first`` followed by the ``forced`` tokens."""
    rows = first.shape[0]
    return torch.cat([first, torch.tensor([forced] * rows, dtype=torch.long).view(rows, -1)], dim=1)


def constrained_beam_search(
    model: Any,
    requests: Sequence[DecodeRequest],
    trie: TrieView,
    *,
    columns: AllowedColumns,
    project: Callable[[torch.Tensor], torch.Tensor],
    max_tokens: int,
    encoded: EncodedPrompts | None,
    steps: DecoderSteps | None = None,
    start_token_id: int | None = None,
    pad_token_id: int = 0,
    copy_weight: float = 0.0,
    gone: Callable[[int], bool] = lambda query: False,
) -> list[list[Hypothesis]]:
    """For each request, up to ``beams`` identifiers of ``trie``, best first.

    The requests decode together: each model call runs the live beams of every query still searching (queries
    that arrive together share the model's passes; each query's ranking is the one it gets alone). A query found
    ``gone`` at a step (asked once per step while it has live beams) loses its beams there.
    ``project`` maps the model's last output to the scores of the columns of ``columns`` (the trie's tokens, or
    the full vocabulary with the identity mapping); ``encoded``: an encoder-decoder's reading of the prompts (None for
    a causal model), whose decoder runs as ``steps`` when it has them.
    """
    if not requests:
        return []
    prompts = [request.prompt for request in requests]
    decoder: _CachedDecoder | _SteppedDecoder
    if steps is not None and encoded is not None and start_token_id is not None:
        decoder = _SteppedDecoder(steps, prompts, encoded=encoded, start_token_id=start_token_id, project=project)
    else:
        decoder = _CachedDecoder(model, prompts, encoded=encoded, start_token_id=start_token_id,
                                 pad_token_id=pad_token_id, project=project)
    copy = _CopyPrior.of(requests, copy_weight, columns=columns.count)
    end = trie.end_token_id
    finished: list[list[Hypothesis]] = [[] for _ in requests]
    forced = _forced_tokens(trie, ())
    live = [_Beam(query=query, tokens=forced, score=0.0) for query in range(len(requests))]
    scores = decoder.first(forced)
    while live:
        allowed = [columns(encode_tokens(beam.tokens), first=not beam.tokens) for beam in live]
        rows = torch.cat([torch.full((len(a),), row, dtype=torch.long) for row, a in enumerate(allowed) if a is not None])
        picked = torch.cat([a for a in allowed if a is not None])
        queries = torch.tensor([beam.query for beam in live])
        step = log_softmax_over(scores, rows, picked)
        if copy is not None:
            step = copy.mix(step, rows, picked, queries=queries)
        step = step + torch.tensor([beam.score for beam in live])[rows]
        # Rows are grouped by query, so each query's entries are one slice of ``step``.
        entries = torch.bincount(queries[rows], minlength=len(requests)).tolist()
        origins: list[int] = []
        survivors: list[_Beam] = []
        low = 0
        for query, count in enumerate(entries):
            if count and not gone(query):
                chosen = _choose(step[low : low + count], low, rows, picked, live, columns, trie, finished[query],
                                 beams=requests[query].beams, end=end, max_tokens=max_tokens)
                origins += [row for row, _ in chosen]
                survivors += [beam for _, beam in chosen]
            low += count
        live = survivors
        if live:
            # One token per beam and call, forced or chosen. Reading a beam's forced tokens in the same call
            # (as many as the beam with the fewest has, so that rows grow alike) saved a fifth of a lone query's
            # calls, but how many a call took depended on the other queries' beams, and a token's states computed
            # in a call of three differ in the last bits from one at a time: an int8 model rounds that into
            # scores that moved by a hundredth with the batch.
            scores = decoder.next(torch.tensor(origins), torch.tensor([beam.tokens[-1:] for beam in live]))
    return [sorted(done, key=lambda hypothesis: -hypothesis.score)[: request.beams]
            for done, request in zip(finished, requests, strict=True)]


def _choose(step: torch.Tensor, offset: int, rows: torch.Tensor, picked: torch.Tensor, live: list[_Beam],
            columns: AllowedColumns, trie: TrieView, finished: list[Hypothesis], *, beams: int, end: int,
            max_tokens: int) -> list[tuple[int, _Beam]]:
    """One query's step: its best extensions finish (added to ``finished``) or live on as ``(origin row, beam)``,
    best first; a beam that can no longer reach the query's top ``beams`` is dropped."""
    best = torch.topk(step, min(2 * beams, len(step))).indices.tolist()
    threshold = _kth_score(finished, beams)
    survivors: list[tuple[int, _Beam]] = []
    for index in best:
        score = float(step[index])
        if score <= threshold or len(survivors) == beams:
            break
        row = int(rows[offset + index])
        beam = live[row]
        tokens = (*beam.tokens, columns.token(int(picked[offset + index])))
        rest = [] if tokens[-1] == end else trie.completion(encode_tokens(tokens))
        if rest is not None:
            finished.append(Hypothesis(tokens=(*tokens, *rest), score=score))
            threshold = _kth_score(finished, beams)
        elif len(tokens) < max_tokens:
            survivors.append((row, _Beam(query=beam.query, tokens=tokens, score=score)))
    return [(row, beam) for row, beam in survivors if beam.score > threshold]


def _forced_tokens(trie: TrieView, tokens: tuple[int, ...]) -> tuple[int, ...]:
    """The tokens that must follow ``tokens`` before the trie offers a choice (never the end token)."""
    forced: list[int] = []
    while len(children := trie.children(encode_tokens((*tokens, *forced)))) == 1 and children[0] != trie.end_token_id:
        forced.append(children[0])
    return tuple(forced)


def _kth_score(finished: list[Hypothesis], k: int) -> float:
    """The score a live beam must beat to still enter the top ``k``: -inf until ``k`` have finished."""
    if len(finished) < k:
        return float("-inf")
    return sorted((hypothesis.score for hypothesis in finished), reverse=True)[k - 1]
