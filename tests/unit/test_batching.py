"""Combiner: calls that arrive while a batch runs form the next batch; a failure stays with its own item."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from ssi_plugin.generation.batching import Combiner


def _until_waiting(combine: Combiner, callers: int) -> None:
    """Wait until ``callers`` calls wait for the next batch (the running one is held by the test)."""
    deadline = time.monotonic() + 30
    while len(combine._queue) < callers:
        assert time.monotonic() < deadline, f"{len(combine._queue)} of {callers} callers waiting"
        time.sleep(0.01)


def test_calls_waiting_while_a_batch_runs_make_up_the_next_batch_up_to_the_limit():
    batches: list[list[int]] = []
    release = threading.Event()

    def run(items: list[int], gone) -> list[int]:
        batches.append(items)
        if len(batches) == 1:
            release.wait(timeout=30)
        return [item * 10 for item in items]

    combine = Combiner(run, limit=3)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(combine, 0)
        while not batches:
            time.sleep(0.01)
        rest = [pool.submit(combine, item) for item in range(1, 6)]
        _until_waiting(combine, 5)
        release.set()
        assert [first.result(), *(future.result(timeout=10) for future in rest)] == [0, 10, 20, 30, 40, 50]
    assert batches[0] == [0]
    assert sorted(len(batch) for batch in batches[1:]) == [2, 3]  # five waiting callers, three at a time
    assert sorted(item for batch in batches for item in batch) == list(range(6))
    assert combine(7) == 70 and batches[-1] == [7]  # a caller alone runs at once


def test_a_failing_batch_is_run_again_item_by_item_so_only_the_bad_item_fails():
    release = threading.Event()
    started = threading.Event()
    sizes: list[int] = []

    def run(items: list[str], gone) -> list[str]:
        sizes.append(len(items))
        if not started.is_set():
            started.set()
            release.wait(timeout=30)
        if "bad" in items:
            raise ValueError("bad item")
        return [item.upper() for item in items]

    combine = Combiner(run, limit=8)
    with ThreadPoolExecutor(4) as pool:
        blocker = pool.submit(combine, "first")
        started.wait(timeout=10)
        futures = {item: pool.submit(combine, item) for item in ("a", "bad", "b")}
        _until_waiting(combine, 3)
        release.set()
        assert blocker.result(timeout=10) == "FIRST"
        assert futures["a"].result(timeout=10) == "A" and futures["b"].result(timeout=10) == "B"
        with pytest.raises(ValueError, match="bad item"):
            futures["bad"].result(timeout=10)
    assert sizes == [1, 3, 1, 1, 1]


def test_the_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit"):
        Combiner(lambda items, gone: items, limit=0)


def test_a_call_its_caller_abandons_while_waiting_fails_with_the_callers_error_and_never_runs():
    """A query waiting for its batch when the engine is found gone fails then, instead of being decoded first."""
    release = threading.Event()
    started = threading.Event()
    ran: list[list[str]] = []
    gone: list[BaseException] = []

    def run(items: list[str], gone) -> list[str]:
        ran.append(items)
        if not started.is_set():
            started.set()
            release.wait(timeout=30)
        return [item.upper() for item in items]

    combine = Combiner(run, limit=8)
    with ThreadPoolExecutor(4) as pool:
        blocker = pool.submit(combine, "first")
        started.wait(timeout=10)
        waiting = pool.submit(combine, "waits", abandon=lambda: gone[0] if gone else None)
        kept = pool.submit(combine, "kept", abandon=lambda: None)
        _until_waiting(combine, 2)
        gone.append(ConnectionError("the engine is gone"))
        release.set()
        assert blocker.result(timeout=10) == "FIRST" and kept.result(timeout=10) == "KEPT"
        with pytest.raises(ConnectionError, match="gone"):
            waiting.result(timeout=10)
    assert ran == [["first"], ["kept"]]
    assert combine("again", abandon=lambda: None) == "AGAIN"


def test_a_running_batch_asks_whether_its_items_are_still_wanted_and_their_callers_leave_with_their_errors():
    """A query being decoded when the engine is found gone fails at the next step instead of decoding to its end."""
    gone_now: list[BaseException] = []
    steps: list[int] = []

    def run(items: list[str], gone) -> list[str]:
        for step in range(1000):  # a long decoding: each step asks which items are still wanted
            steps.append(step)
            if step == 3:
                gone_now.append(ConnectionError("the engine is gone"))
            if all(gone(index) for index in range(len(items))):
                break
            time.sleep(0.001)
        return [item.upper() for item in items]

    combine = Combiner(run, limit=8)
    with pytest.raises(ConnectionError, match="gone"):
        combine("query", abandon=lambda: gone_now[0] if gone_now else None)
    assert len(steps) == 4
