"""A process that answers queries on many threads keeps few C allocator arenas (glibc's, counted by malloc_stats)."""

from __future__ import annotations

import ctypes
import subprocess
import sys

import pytest

from ssi_plugin.threads import MALLOC_ARENAS

THREADS_ALLOCATE = """
import ctypes, sys, threading
from ssi_plugin.threads import few_allocator_arenas
if sys.argv[1] == "capped":
    few_allocator_arenas()
ready = threading.Barrier(9)
def allocate():
    kept = [bytearray(50_000) for _ in range(4)]  # under glibc's mmap threshold: from the thread's arena
    ready.wait()
    ready.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
ready.wait()  # every thread holds its memory
ctypes.CDLL(None).malloc_stats()  # one "Arena n:" block per arena, on stderr
ready.wait()
for thread in threads:
    thread.join()
"""


def _arenas(mode: str) -> int:
    run = subprocess.run([sys.executable, "-c", THREADS_ALLOCATE, mode], capture_output=True, text=True, timeout=60, check=True)
    return run.stderr.count("Arena ")


@pytest.mark.skipif(not hasattr(ctypes.CDLL(None), "malloc_stats"), reason="the C library is not glibc: no arenas to cap")
def test_threads_of_a_serving_process_share_few_allocator_arenas():
    assert _arenas("default") > MALLOC_ARENAS  # each thread got an arena of its own
    assert _arenas("capped") <= MALLOC_ARENAS
