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


def one_thread_per_query() -> None:
    """For a process that answers queries concurrently (``serve``): torch and the BLAS under numpy compute on the
    calling thread only.

    There, parallelism comes from the queries (decoded together in batches) and from the engine. A second
    thread of a pool only spin-waits between the small products of a query (the generator's, MiniLM's, the
    related concepts' cosines), at the expense of the other queries and the engine. Measured through ``serve``
    with 16 clients on the 2-core machine (``benchmarks.load``): 11.5 ms of serve CPU per query instead of 20.6
    with numpy's OpenBLAS on two threads, 83 queries/s instead of 75.
    """
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(limits=1, user_api="blas")
