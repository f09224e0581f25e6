"""Threads and what they cost: how many threads torch computes with, set for one block of work only, and how a
process that answers queries on many threads (``serve``) sets up torch, BLAS and the C allocator.

On a 2-core machine that also runs the engine, a second intra-op thread mostly
spin-waits: one thread is faster for the small models of ssi-plugin (measured
for the generator and the image tagger). The setting is restored afterwards,
so callers with other needs are not affected.
"""

from __future__ import annotations

import ctypes
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


MALLOC_ARENAS = 2
"""Heap arenas of the C allocator in a process that answers queries on many threads."""

_M_ARENA_MAX = -8
"""glibc's ``mallopt`` parameter for the most arenas (``malloc.h``)."""


def few_allocator_arenas() -> None:
    """Cap the C allocator's heap arenas at ``MALLOC_ARENAS`` (glibc; elsewhere nothing changes), as
    ``MALLOC_ARENA_MAX=2`` in the environment would.

    glibc gives each thread that allocates its own arena, up to 8 per core, and memory freed in one arena serves
    only the threads of that arena: with 32 query threads allocating tensors of every size, ``serve``'s resident
    memory grew by a quarter to a third over a minute of load (``benchmarks.load``, mixed part, 100k untrained:
    +25 % and +33 %). Capped: +8 %, and queries were faster (20.5 ``ssi`` queries/s against 18.8). Called before the
    query threads start: glibc fixes its limit once it holds more than 8 arenas.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
