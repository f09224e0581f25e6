"""The BERT decoder of an encoder-decoder as two traced calls over a key/value cache of plain tensors.

A beam search calls the decoder a few times per batch of queries. Through the Hugging Face model each call runs op
by op from Python and keeps its cache in Python objects, and under load the waits for the interpreter lock between
ops cost more than the ops (``tracing``). Here the first call (the start tokens, reading the prompts' states) and
every later one (new tokens on top of the cache) are each one TorchScript call: the cache goes in and out as
tensors, the beams' reordering happens inside the call, and the masks are given whole so that no shape is decided
in Python. Cross-attention keys and values are computed once per query and picked for each row inside the call.

Only ``EncoderDecoderModel`` with a BERT decoder (the default generator) gets these; other models, and any the
tracer cannot follow, decode through the Hugging Face cache (``beam_search``). The scores are the model's own
(tested against ``generate``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ssi_plugin.generation.tracing import traced

_Layers = tuple[torch.Tensor, ...]
"""One tensor per decoder layer: ``(rows, heads, length, head size)``."""


@dataclass(frozen=True)
class StepCache:
    """What the decoder has read: self-attention keys and values per row (a row is one beam), cross-attention keys
    and values per query, the prompts' additive mask per query, and each row's query."""

    keys: _Layers
    values: _Layers
    cross_keys: _Layers
    cross_values: _Layers
    memory_mask: torch.Tensor
    queries: torch.Tensor


class _Decoder(torch.nn.Module):
    """The Hugging Face decoder called with a cache built from tensors, returning the last position's output and
    the cache as tensors. ``first``: the cache holds nothing yet and the prompts' states are read."""

    def __init__(self, decoder: Any, *, first: bool) -> None:
        super().__init__()
        self.decoder = decoder
        self.first = first

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor, *cache: Any) -> tuple[torch.Tensor, ...]:
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        config = self.decoder.config
        layers = config.num_hidden_layers
        state = EncoderDecoderCache(DynamicCache(config=config), DynamicCache(config=config))
        if not self.first:
            origins, queries, keys, values, cross_keys, cross_values = cache
            memory_mask = memory_mask.index_select(0, queries)
            for layer in range(layers):
                state.self_attention_cache.update(keys[layer].index_select(0, origins),
                                                  values[layer].index_select(0, origins), layer)
                state.cross_attention_cache.update(cross_keys[layer].index_select(0, queries),
                                                   cross_values[layer].index_select(0, queries), layer)
                state.is_updated[layer] = True
            memory = memory.expand(tokens.shape[0], -1, -1)  # a placeholder: the cache holds what was read
        output = self.decoder(input_ids=tokens, position_ids=positions, attention_mask=mask, encoder_hidden_states=memory,
                              encoder_attention_mask=memory_mask, cache=state, use_cache=True)
        read = _keys_and_values(state.cross_attention_cache, layers) if self.first else ()
        return (output.logits[:, -1], *_keys_and_values(state.self_attention_cache, layers), *read)


class DecoderSteps:
    """``start`` and ``step`` of a beam search, each one traced call (see the module's docstring)."""

    def __init__(self, first: Any, later: Any) -> None:
        self._first = first
        self._later = later

    @classmethod
    def of(cls, model: Any) -> DecoderSteps | None:
        """The steps of ``model`` if it is an ``EncoderDecoderModel`` with a BERT decoder the tracer can follow."""
        decoder: Any = getattr(model, "decoder", None)
        if (type(model).__name__ != "EncoderDecoderModel" or getattr(model, "enc_to_dec_proj", None) is not None
                or getattr(getattr(decoder, "config", None), "model_type", None) != "bert"):
            return None
        hidden = int(decoder.config.hidden_size)
        first, later = _Decoder(decoder, first=True), _Decoder(decoder, first=False)
        examples = []
        for rows, prompt, new in ((2, 3, 2), (3, 5, 1)):  # traced on the first, checked on the second
            memory = torch.randn(rows, prompt, hidden)
            start = _first_inputs(torch.ones(rows, new, dtype=torch.long), memory, _additive(torch.ones(rows, prompt)))
            with torch.no_grad():
                _, keys, values, cross_keys, cross_values = first(*start)
            origins = torch.arange(rows).flip(0)
            examples.append((start, _later_inputs(torch.ones(rows, new, dtype=torch.long), start[4], origins, origins,
                                                  keys, values, cross_keys, cross_values)))
        (start_example, later_example), (start_check, later_check) = examples
        traced_first = traced(first, start_example, start_check, what="the decoder's first step")
        traced_later = traced(later, later_example, later_check, what="the decoder's steps")
        if traced_first is None or traced_later is None:
            return None
        return cls(traced_first, traced_later)

    def start(self, tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> tuple[torch.Tensor, StepCache]:
        """The output after ``tokens`` (one row per query) for prompts read as ``memory`` under ``memory_mask``
        (0/1, one row per query), and the cache to go on from."""
        queries = torch.arange(tokens.shape[0])
        mask = _additive(memory_mask)
        last, keys, values, cross_keys, cross_values = self._first(*_first_inputs(tokens, memory, mask))
        return last, StepCache(keys, values, cross_keys, cross_values, mask, queries)

    def step(self, cache: StepCache, origins: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, StepCache]:
        """The output after appending the row ``tokens[i]`` to the beam that was row ``origins[i]``."""
        queries = cache.queries[origins]
        last, keys, values = self._later(*_later_inputs(tokens, cache.memory_mask, origins, queries, cache.keys,
                                                        cache.values, cache.cross_keys, cache.cross_values))
        return last, StepCache(keys, values, cache.cross_keys, cache.cross_values, cache.memory_mask, queries)


def _keys_and_values(cache: Any, layers: int) -> tuple[_Layers, _Layers]:
    return tuple(cache.layers[layer].keys for layer in range(layers)), tuple(cache.layers[layer].values for layer in range(layers))


def _additive(mask: torch.Tensor) -> torch.Tensor:
    """A 0/1 mask of prompt tokens as the additive ``(rows, 1, 1, length)`` mask attention takes."""
    return torch.where(mask[:, None, None, :].bool(), 0.0, torch.finfo(torch.float32).min)


def _causal(rows: int, past: int, new: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions of ``new`` tokens after ``past`` ones, and the additive mask that lets each see itself and before."""
    positions = torch.arange(past, past + new).expand(rows, new)
    later = torch.arange(past + new)[None, :] > positions[:1, :, None]
    return positions, torch.where(later, torch.finfo(torch.float32).min, 0.0).expand(rows, 1, new, past + new)


def _first_inputs(tokens: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return (tokens, *_causal(tokens.shape[0], 0, tokens.shape[1]), memory, memory_mask)


def _later_inputs(tokens: torch.Tensor, memory_mask: torch.Tensor, origins: torch.Tensor, queries: torch.Tensor,
                  keys: _Layers, values: _Layers, cross_keys: _Layers, cross_values: _Layers) -> tuple[Any, ...]:
    positions, mask = _causal(tokens.shape[0], keys[0].shape[2], tokens.shape[1])
    memory = torch.zeros(1, 1, cross_keys[0].shape[1] * cross_keys[0].shape[3])
    return (tokens, positions, mask, memory, memory_mask, origins, queries, keys, values, cross_keys, cross_values)
