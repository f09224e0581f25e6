"""How many threads torch computes with, set for one block of work only.

On a 2-core machine that also runs the engine, a second intra-op thread mostly
spin-waits: one thread is faster for the small models of ssi-plugin (measured
for the generator and the image tagger). The setting is restored afterwards,
so callers with other needs are not affected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def intra_op_threads(threads: int | None) -> Iterator[None]:
    """torch uses ``threads`` intra-op threads inside the block (nothing changes for None)."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None and threads != previous:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)
