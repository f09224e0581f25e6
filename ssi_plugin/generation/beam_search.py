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

A ``CopyPrior`` lets probability reach identifiers the model never wrote in
training: where the trie allows tokens of the query's own words, a share of each
step's probability goes to them (a mixture, so scores stay log-probabilities).
A model fine-tuned on a few hundred captions gives a word it never wrote as a
target almost no probability, whatever the query says; with the prior, an image
ingested after training is named by the words a query shares with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import torch

from ssi_plugin.generation.constraint import AllowedColumns, log_softmax_over
from ssi_plugin.trie import TrieView, encode_tokens

if TYPE_CHECKING:
    from transformers import Cache


@dataclass(frozen=True)
class Hypothesis:
    """A finished identifier: its token ids (ending in the end token) and log-probability within the trie."""

    tokens: tuple[int, ...]
    score: float


@dataclass(frozen=True)
class CopyPrior:
    """``weight`` of each step's probability shared evenly by the allowed columns that are the query's own tokens
    (``copyable``, one flag per column); a step that allows none of them keeps the model's distribution."""

    copyable: torch.Tensor
    weight: float

    def mix(self, log_probs: torch.Tensor, rows: torch.Tensor, picked: torch.Tensor, *, beams: int) -> torch.Tensor:
        """``log((1 - w) p + w q)`` of each entry, where ``q`` is uniform over the row's copyable entries."""
        copyable = self.copyable[picked]
        if not bool(copyable.any()):
            return log_probs
        counts = torch.zeros(beams).index_add_(0, rows, copyable.float())[rows]
        copied = torch.where(copyable, math.log(self.weight) - counts.clamp(min=1).log(), float("-inf"))
        mixed = torch.logaddexp(log_probs + math.log1p(-self.weight), copied)
        return torch.where(counts > 0, mixed, log_probs)


@dataclass(frozen=True)
class _Beam:
    tokens: tuple[int, ...]
    score: float


class _CachedDecoder:
    """One model step for a batch of beams, whose key/value cache follows the beams chosen at each step.

    ``project`` turns the model's last output (hidden states, under a ``HiddenStatesHead``) into column scores.
    """

    def __init__(self, model: Any, prompt: torch.Tensor, *, seq2seq: bool, start_token_id: int | None,
                 project: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._model = model
        self._project = project
        self._seq2seq = seq2seq
        self._cache: Cache | None = None
        if seq2seq:
            mask = torch.ones_like(prompt)
            self._memory = model.get_encoder()(input_ids=prompt, attention_mask=mask).last_hidden_state
            self._memory_mask = mask
            self._first = torch.tensor([[start_token_id]])
        else:
            self._first = prompt

    def first(self, forced: tuple[int, ...]) -> torch.Tensor:
        """Scores of the token after the ``forced`` first tokens, shape ``(1, columns)``."""
        return self._run(torch.cat([self._first, torch.tensor([forced], dtype=torch.long)], dim=1))

    def next(self, origins: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Scores after appending the row ``tokens[i]`` to the beam that was row ``origins[i]``."""
        assert self._cache is not None, "next() follows first()"
        self._cache.reorder_cache(cast(torch.LongTensor, origins))  # any integer tensor indexes the beams
        return self._run(tokens)

    def _run(self, input_ids: torch.Tensor) -> torch.Tensor:
        rows = input_ids.shape[0]
        if self._seq2seq:
            output = self._model(
                encoder_outputs=(self._memory.expand(rows, -1, -1),),
                attention_mask=self._memory_mask.expand(rows, -1),
                decoder_input_ids=input_ids,
                cache=self._cache,
                use_cache=True,
            )
        else:
            output = self._model(input_ids=input_ids, cache=self._cache, use_cache=True)
        self._cache = output.cache
        return self._project(output.logits[:, -1, :])


def constrained_beam_search(
    model: Any,
    prompt: list[int],
    trie: TrieView,
    *,
    columns: AllowedColumns,
    project: Callable[[torch.Tensor], torch.Tensor],
    beams: int,
    max_tokens: int,
    seq2seq: bool,
    start_token_id: int | None = None,
    copy: CopyPrior | None = None,
) -> list[Hypothesis]:
    """Up to ``beams`` identifiers of ``trie`` for ``prompt``, best first.

    ``project`` maps the model's last output to the scores of the columns of
    ``columns`` (the trie's tokens, or the full vocabulary with the identity mapping).
    """
    decoder = _CachedDecoder(model, torch.tensor([prompt]), seq2seq=seq2seq, start_token_id=start_token_id, project=project)
    end = trie.end_token_id
    finished: list[Hypothesis] = []
    forced = _forced_tokens(trie, ())
    live = [_Beam(tokens=forced, score=0.0)]
    scores = decoder.first(forced)
    while live:
        allowed = [columns(encode_tokens(beam.tokens), first=not beam.tokens) for beam in live]
        rows = torch.cat([torch.full((len(a),), row, dtype=torch.long) for row, a in enumerate(allowed) if a is not None])
        picked = torch.cat([a for a in allowed if a is not None])
        step = log_softmax_over(scores, rows, picked)
        if copy is not None:
            step = copy.mix(step, rows, picked, beams=len(live))
        step = step + torch.tensor([beam.score for beam in live])[rows]
        best = torch.topk(step, min(2 * beams, len(step))).indices.tolist()
        threshold = _kth_score(finished, beams)
        origins: list[int] = []
        survivors: list[_Beam] = []
        for index in best:
            score = float(step[index])
            if score <= threshold or len(survivors) == beams:
                break
            row = int(rows[index])
            tokens = (*live[row].tokens, columns.token(int(picked[index])))
            rest = [] if tokens[-1] == end else trie.completion(encode_tokens(tokens))
            if rest is not None:
                finished.append(Hypothesis(tokens=(*tokens, *rest), score=score))
                threshold = _kth_score(finished, beams)
            elif len(tokens) < max_tokens:
                origins.append(row)
                survivors.append(_Beam(tokens=tokens, score=score))
        live = [beam for beam in survivors if beam.score > threshold]
        if live:
            # Tokens the trie forces cost nothing: every beam takes as many of its forced tokens as the one
            # with the fewest, in the same model call (rows of one call must grow by the same length).
            chains = [_forced_tokens(trie, beam.tokens) for beam in live]
            shared = min(map(len, chains))
            live = [_Beam(tokens=(*beam.tokens, *chain[:shared]), score=beam.score) for beam, chain in zip(live, chains, strict=True)]
            scores = decoder.next(torch.tensor(origins[: len(live)]), torch.tensor([beam.tokens[-1 - shared :] for beam in live]))
    return sorted(finished, key=lambda hypothesis: -hypothesis.score)[:beams]


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
