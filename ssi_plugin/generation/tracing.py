"""A model's hot path as one TorchScript call, checked against the eager module before it is used.

Run op by op from Python, a model gives up the interpreter lock at every op and waits for it again; under load the
threads that answer HTTP and read the engine's answers hold it meanwhile. With one busy Python thread beside it, a
batch of 8 demo prompts through the encoder took 694 ms instead of 37, and a decoder step 432 ms instead of 5. A
TorchScript trace runs as one call that keeps the lock released throughout: 56 ms and 10 ms. TorchScript is
deprecated in favour of ``torch.compile`` and ``torch.export``, which need a compiler at start-up or still run op by
op from Python; torch is pinned.

A trace records the ops of one example: a shape or branch taken from Python values would be frozen into it. So each
trace is checked on a second example of other shapes, to the last bit; if tracing fails or the check does, the
caller runs the module op by op (a warning says why).
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

log = logging.getLogger(__name__)


def traced(forward: torch.nn.Module, example: tuple[Any, ...], check: tuple[Any, ...], *, what: str) -> Any | None:
    """``forward`` traced on ``example`` if it gives ``forward``'s own outputs on ``check``; None (and a warning naming
    ``what``) otherwise."""
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer and deprecation warnings: the trace is checked just below
            module = torch.jit.trace(forward, example, check_trace=False)
            if not _same(module(*check), forward(*check)):
                raise RuntimeError("its outputs differ from the eager module's on inputs of other shapes")
    except Exception as exc:  # a model the tracer cannot follow still runs, op by op
        log.warning("%s runs untraced: %s", what, exc)
        return None
    return module


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    return isinstance(a, tuple | list) and isinstance(b, tuple | list) and len(a) == len(b) and all(map(_same, a, b))
