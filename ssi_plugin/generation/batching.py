"""Calls that arrive together run as one batch: concurrent queries share the generator's model passes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Waiting(Generic[Item, Result]):
    def __init__(self, item: Item, abandon: Callable[[], BaseException | None] | None) -> None:
        self.item = item
        self.abandon = abandon
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None
        self.woken = threading.Event()
        """Set when the call is settled, or when it is its turn to run the next batch."""

    def settle(self, result: Result | None = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.done = result, error, True
        self.woken.set()


class Combiner(Generic[Item, Result]):
    """Runs ``run`` over the items of every call waiting when it is free, at most ``limit`` at a time.

    Calls that arrive while a batch runs make up the next batch, so concurrent callers share one pass of the
    work instead of queueing for it one by one, and a caller alone is a batch of one, run at once. There is no
    thread of its own: a waiting caller runs the next batch for everyone in it. A batch that fails is run again
    one item at a time, so that an error is its own item's and never its neighbours'. A caller may say when its
    item is no longer worth running (``abandon``: an error to raise instead), checked when its batch is formed and
    whenever ``run`` asks: ``run(items, gone)`` may call ``gone(i)``, true once item ``i``'s caller has its error
    (``run`` can stop working on it; what it returns for it is not used).

    A caller waits on an event of its own, set when its item is settled or when the batch before has ended and
    its call is the oldest waiting: it then runs the next batch. (Waiting callers used to queue on one lock that
    each took in turn to see whether their item was done; under load the callers of the batch just ended took it
    before the next batch's, and a batch started 9 ms after the one before on average.)
    """

    def __init__(self, run: Callable[[list[Item], Callable[[int], bool]], list[Result]], *, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self._run = run
        self._limit = limit
        self._queue: list[_Waiting[Item, Result]] = []
        self._lock = threading.Lock()
        self._running = False
        """A caller is running a batch (or has been woken to run the next)."""

    def __call__(self, item: Item, *, abandon: Callable[[], BaseException | None] | None = None) -> Result:
        waiting: _Waiting[Item, Result] = _Waiting(item, abandon)
        with self._lock:
            self._queue.append(waiting)
            if not self._running:
                self._running = True
                waiting.woken.set()
        while True:
            waiting.woken.wait()
            if waiting.done:
                break
            waiting.woken.clear()  # its turn to run a batch: the event now waits for the settling
            with self._lock:
                batch, self._queue = self._queue[: self._limit], self._queue[self._limit :]
            try:
                self._settle([waiting for waiting in batch if not _abandoned(waiting)])
            finally:
                self._pass_the_turn()
        if waiting.error is not None:
            raise waiting.error
        return waiting.result  # type: ignore[return-value]  # settled without an error: run's result

    def _pass_the_turn(self) -> None:
        """The oldest waiting call runs the next batch; with none waiting, the next call runs its own at once.
        (Calls still queued are never settled: only a batch's calls are.)"""
        with self._lock:
            if self._queue:
                self._queue[0].woken.set()
            else:
                self._running = False

    def _settle(self, batch: list[_Waiting[Item, Result]]) -> None:
        if not batch:
            return
        try:
            results = self._run([waiting.item for waiting in batch], lambda index: _abandoned(batch[index]))
        except Exception as exc:
            if len(batch) == 1:
                batch[0].settle(error=exc)
            else:
                for waiting in batch:
                    self._settle([] if waiting.done else [waiting])
            return
        except BaseException as exc:  # Ctrl-C and the like: every caller of the batch hears of it, none waits on
            for waiting in batch:
                waiting.settle(error=exc)
            raise
        for waiting, result in zip(batch, results, strict=True):
            if not waiting.done:
                waiting.settle(result)


def _abandoned(waiting: _Waiting[Item, Result]) -> bool:
    """Settle ``waiting`` with its caller's error when the caller no longer wants it run (true if it is settled so)."""
    if waiting.done:
        return waiting.error is not None
    error = waiting.abandon() if waiting.abandon is not None else None
    if error is not None:
        waiting.settle(error=error)
    return error is not None
