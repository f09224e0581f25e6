"""The generator's arithmetic when it answers queries: int8 by default, float32 (as trained) on request.

Generating is a few small matrix products per step over a batch of beams. Loaded in int8 (the default, or
``precision="int8"``), every linear layer but the output layer multiplies int8 weights (one scale per output channel)
by int8 inputs (one scale per row) with torch's fbgemm kernels; the weights take a quarter of the memory traffic. On one
core of a Zen 3 EPYC (AVX2) the demo's generator (a BERT encoder-decoder) answers a query alone in 12.3 ms instead of
23.5 (p50 of the load benchmark's 60 captions, three rounds), and through ``serve`` a lone client's ``ssi`` query takes
20-26 ms instead of 32-33 (``benchmarks.precision``, ``benchmarks.load``). ``SSI_PRECISION=float32`` (or
``precision="float32"``) keeps the arithmetic the model was trained in.

A query gets the same identifiers and scores batched with others as alone, in int8 as in float32. int8 rounds each
row's inputs onto a grid of 1/127 of their scale, so a last-bit change in what a batch computes can cross a rounding
boundary and move scores by about 1e-2; nothing in a batch may change a row's last bits. Each row is quantized on its
own (``Int8Linear``): torch's own dynamic quantization reads one range from the whole batch, and 1 of the demo model's
60 load captions got the same scores batched as alone. The encoder packs each prompt in an aligned slot
(``encoding``), where attention sums its scores in the same order alone and packed: packed tight, 52-54 of 60 kept
their scores under concurrency. And the beam search reads one token per beam and call (``beam_search``): reading a
beam's forced tokens several at a time, as many as the whole batch allowed, cost 3 of 60 of an untrained model's
queries their scores. Now all keep them (``benchmarks.precision``: ``batched_as_alone``).

The answers are those of a slightly different model, so Recall@1 seen / unseen was replayed on every set the list
weights were chosen on, three trained models each, float32 → int8: the demo set's two splits 91.1 / 84.5 → 91.1 / 85.7
and 94.4 / 85.7 → 93.3 / 84.5, COCO-style captions 99.4 / 97.9 → 99.1 / 97.9, Flickr30k-style 91.3 / 85.2 → 91.7 /
85.2, the synthetic corpus 33.3 / 34.2 → 33.7 / 33.6: a query or two either way.

The output layer stays float32: each trie projects it onto its own tokens (``HiddenStatesHead``). A model in int8 is not
saved: training and ``Generator.save`` work in float32. A process holds about 45 MB more in int8 (the float32 weights
stay mapped from the model file beside fbgemm's packed ones).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from ssi_plugin.config import Precision

log = logging.getLogger(__name__)


class Int8Linear(torch.nn.Module):
    """``linear`` in int8, each input row quantized on its own.

    fbgemm's dynamic linear quantizes its whole input on the grid of the input's range. Each row is divided by its
    largest magnitude and one anchor row holding +1 and -1 is appended, so that range is always [-1, 1]: every row is
    quantized on the same grid, at its own scale, whatever else is in the batch (padding included); integer products
    are exact, and the row's scale and the bias are applied afterwards in float32. A row's output is therefore the same
    to the last bit alone and in any batch (tested), given the same row.
    """

    bias: torch.Tensor
    anchor: torch.Tensor

    def __init__(self, linear: torch.nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp_min(torch.finfo(torch.float32).tiny)
        with warnings.catch_warnings():  # torch marks quantized tensors for removal; the pinned torch has them
            warnings.filterwarnings("ignore", message=r"torch\.quantize_per")
            quantized = torch.quantize_per_channel(weight, scales.double(), torch.zeros(len(scales), dtype=torch.long),
                                                   0, torch.qint8)
        self._packed = torch.ops.quantized.linear_prepack(quantized, None)
        self.in_features, self.out_features = linear.in_features, linear.out_features
        bias = linear.bias.detach().float().clone() if linear.bias is not None else torch.zeros(self.out_features)
        self.register_buffer("bias", bias, persistent=False)
        anchor = torch.zeros(1, self.in_features)
        anchor[0, :2] = torch.tensor([1.0, -1.0])
        self.register_buffer("anchor", anchor, persistent=False)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        rows = inputs.reshape(-1, self.in_features)
        magnitude = rows.abs().amax(dim=1, keepdim=True).clamp_min_(torch.finfo(torch.float32).tiny)
        scaled = torch.cat((rows / magnitude, self.anchor))  # within [-1, 1] exactly: |x| / max|x| rounds to at most 1
        products = torch.ops.quantized.linear_dynamic(scaled, self._packed, True)[:-1]
        return torch.addcmul(self.bias, products, magnitude).reshape(*inputs.shape[:-1], self.out_features)


def with_precision(model: Any, precision: Precision, *, keep: str) -> Any:
    """``model`` computing at ``precision``: for int8 its linear layers, except ``keep`` (a submodule's path), replaced
    in place by ``Int8Linear``. Where this torch has no quantized kernels, the model stays float32 and a warning says so."""
    if precision == "float32":
        return model
    layers = [name for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear) and name != keep and not name.startswith(f"{keep}.")]
    try:
        replacements = {name: Int8Linear(model.get_submodule(name)) for name in layers}
    except (RuntimeError, AttributeError) as exc:  # no fbgemm/onednn in this build, or no quantized ops at all
        log.warning("this torch cannot compute in int8 (%s): the generator computes in float32", exc)
        return model
    for name, replacement in replacements.items():
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent), child, replacement)
    return model


def is_quantized(model: Any) -> bool:
    """Whether any of ``model``'s layers computes in int8 (``with_precision``)."""
    return any(isinstance(module, Int8Linear) for module in model.modules())
