"""An encoder-decoder's encoder over a batch of prompts: the states the decoder attends to, at the least cost.

The encoder is most of a batch's time (the default generator's MiniLM encoder: two thirds of it under load), so
a BERT encoder gets two things the padded batch of a generic encoder does not:

- **Packing.** Prompts of a batch differ in length by a third of the longest on average. They are read side by side
  in one row (``PACKED_TOKENS`` at most), each in a slot of its own (its length rounded up to a multiple of 16),
  attending to its own tokens alone with positions counted from 0: 16 of the load benchmark's captions encode in 146
  ms instead of 217 padded to the longest (float32, one thread; int8: 86 against 157; slots aligned to 8 then).
- **One call without the interpreter lock**: the packed forward runs as a checked TorchScript trace (``tracing``).
  Under load a batch of 8 demo queries took 86 ms op by op in ``serve`` against 56 alone.

Each prompt's states are the ones it gets alone, to the last bit, whatever else is in its batch (tested): a query's
answer must not depend on its neighbours, and the int8 generator (``precision``) turns a last-bit change into a
visible one when it rounds. Attention sums a row's scores in vector lanes (8 floats with AVX2, 16 with AVX-512); a
slot that starts at a multiple of 16, is at least 16 wide and sits in a row shorter than 192 (where torch's CPU
attention takes queries in blocks of 32) is summed in the same lanes and the same order alone and packed, the other
slots adding exact zeros. Prompts packed tight summed differently and moved the int8 scores of 1 in 10 queries by up
to 0.2 under load; slots aligned to 8, enough with AVX2, changed the states of 97 of 378 prompts on an AVX-512
machine (random batches of the demo's model), and those of none aligned to 16.

The states also say what a prompt means: averaged over its tokens (``EncodedPrompts.meanings``) they are, for the
default generator, the sentence vector of all-MiniLM-L6-v2 after fine-tuning at a tenth of the decoder's learning
rate. The meaning list compares a query's with its found identifiers' at no second model pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ssi_plugin.embedding import mean_pooled
from ssi_plugin.generation.tracing import traced

PACKED_TOKENS = 184
"""Most slot tokens an encoder call takes side by side: attention grows with their square, and from 192 on torch
splits a row's queries in blocks of 64, where a slot's states depend on its place in the row."""
SLOT_ALIGN = 16
SLOT_MIN = 16
"""A prompt's slot: its length rounded up to a multiple of ``SLOT_ALIGN`` (the vector lanes of attention's sums: 16
floats with AVX-512), at least ``SLOT_MIN`` (with AVX2, an 8-wide row is summed another way)."""


class _PackedForward(torch.nn.Module):
    """The encoder's states for packed prompts: a module of tensors in and out, as tracing needs."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=ids, attention_mask=mask, position_ids=positions).last_hidden_state


@dataclass(frozen=True)
class EncodedPrompts:
    """A batch's prompts as an encoder read them: ``states`` ``(prompts, longest, hidden)``, laid out right-padded
    as ``mask`` says."""

    states: torch.Tensor
    mask: torch.Tensor

    def meanings(self) -> torch.Tensor:
        """Each prompt's states averaged over its tokens, at unit length (as all-MiniLM-L6-v2 pools a sentence)."""
        return mean_pooled(self.states, self.mask)


class PromptEncoder:
    """``encoder`` (an encoder-decoder's) over a batch's prompts, packed and traced when it is a BERT encoder."""

    def __init__(self, encoder: Any) -> None:
        self._encoder = encoder
        self._packed = _traced(_PackedForward(encoder)) if getattr(encoder.config, "model_type", None) == "bert" else None
        """The packed forward (traced, or op by op when the tracer cannot follow the model); None: padded batches."""

    def __call__(self, prompts: Sequence[list[int]], ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The states of each prompt, one ``(queries, longest, hidden)`` tensor laid out as the padded ``ids`` and
        ``mask`` (right-padded)."""
        if self._packed is None:
            return self._encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        memory = torch.zeros(*ids.shape, int(self._encoder.config.hidden_size))
        slots = [slot_width(len(prompt)) for prompt in prompts]
        for pack in packs(slots):
            states = self._packed(*_packed_inputs(prompts[pack]))[0]
            for row, piece in enumerate(states.split(slots[pack]), start=pack.start):
                memory[row, : len(prompts[row])] = piece[: len(prompts[row])]
        return memory

    def read(self, prompts: Sequence[list[int]], pad_token_id: int) -> EncodedPrompts:
        """The prompts' states, right-padded with ``pad_token_id`` to the slot width of the longest: the decoder's
        cross-attention then sums each prompt's states in the lanes it uses for that prompt alone."""
        ids, mask = padded(prompts, pad_token_id, left=False, width=slot_width(max(map(len, prompts))))
        return EncodedPrompts(self(prompts, ids, mask), mask)


def padded(prompts: Sequence[list[int]], pad: int, *, left: bool, width: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompts as one ``(queries, max(longest, width))`` tensor of ids and its attention mask."""
    longest = max(width, *map(len, prompts))
    ids = torch.full((len(prompts), longest), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), longest), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        span = slice(longest - len(prompt), longest) if left else slice(0, len(prompt))
        ids[row, span] = torch.tensor(prompt, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def packs(lengths: Sequence[int], limit: int | None = None) -> list[slice]:
    """Consecutive prompts read together, each run at most ``limit`` tokens (``PACKED_TOKENS``; a longer prompt alone)."""
    limit = PACKED_TOKENS if limit is None else limit
    runs: list[slice] = []
    first = 0
    while first < len(lengths):
        last, tokens = first + 1, lengths[first]
        while last < len(lengths) and tokens + lengths[last] <= limit:
            tokens += lengths[last]
            last += 1
        runs.append(slice(first, last))
        first = last
    return runs


def slot_width(length: int) -> int:
    """The width a prompt of ``length`` tokens takes: a multiple of ``SLOT_ALIGN``, at least ``SLOT_MIN``."""
    return max(SLOT_MIN, -(-length // SLOT_ALIGN) * SLOT_ALIGN)


def _packed_inputs(prompts: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One row of the prompts' ids, each right-padded to its slot; an additive mask that lets every position see its
    own prompt's tokens alone; positions from 0 in each slot."""
    slots = [slot_width(len(prompt)) for prompt in prompts]
    segment = torch.repeat_interleave(torch.arange(len(prompts)), torch.tensor(slots))
    real = torch.cat([torch.arange(slot) < len(prompt) for prompt, slot in zip(prompts, slots, strict=True)])
    alone = torch.where((segment[:, None] == segment[None, :]) & real[None, :], 0.0, torch.finfo(torch.float32).min)
    ids = torch.tensor([[token for prompt, slot in zip(prompts, slots, strict=True)
                         for token in (*prompt, *[0] * (slot - len(prompt)))]])
    positions = torch.cat([torch.arange(slot) for slot in slots])[None]
    return ids, alone[None, None], positions


def _traced(forward: _PackedForward) -> Any:
    """``forward`` as one traced call; ``forward`` itself when it cannot be traced."""
    example = _packed_inputs([[1, 2, 3], [1, 2]])
    check = _packed_inputs([[1, 2], [3, 4, 5, 6], [7]])
    module = traced(forward, example, check, what="the prompt encoder")
    return forward if module is None else module
