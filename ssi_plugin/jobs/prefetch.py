"""Run a producer in a background thread so that annotating and indexing overlap.

While the main thread waits on a bulk request (the engine indexing, the GIL
released), the producer annotates the next batch; on two cores that keeps both
busy. The queue is bounded, so memory stays flat; an exception in the producer
is raised in the consumer.

``prefetched`` is a context manager, not a bare generator: leaving the block
(at the end, on an error such as an engine outage, on Ctrl-C) stops the
producer and joins it there and then. A generator would only be closed when
collected, and an exception's traceback keeps it alive (the bulk helpers hold
it), so the producer could still be inside a model (spaCy's BLAS, torch) when
the interpreter shuts down, which aborts the process (``libblis: Aborting.``)
instead of exiting with the error's code. The producer is not a daemon thread
either: should anything skip the join, the interpreter waits for it at exit
rather than killing it mid-computation; it notices the stop within one item.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Generator, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class _Done:
    """What the producer puts in the channel after the last item."""


_DONE = _Done()


@contextlib.contextmanager
def prefetched(items: Iterable[T], *, buffer: int = 1000) -> Iterator[Iterator[T]]:
    """Within the block, an iterator over ``items`` in order, produced up to ``buffer`` ahead by a background thread.

    On leaving the block the producer stops after the item it is making, closes ``items`` (when it is a
    generator, so the chain's own ``finally`` blocks run in the thread that ran it) and is joined.
    """
    channel: queue.Queue[T | _Done | BaseException] = queue.Queue(maxsize=buffer)
    stop = threading.Event()

    def put(item: T | _Done | BaseException) -> bool:
        while not stop.is_set():
            try:
                channel.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    break
            else:
                put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
        finally:
            if isinstance(items, Generator):  # only an unfinished chain has work left: the consumer has left by then
                with contextlib.suppress(Exception):  # e.g. freeing a scroll on an engine that is down; it expires anyway
                    items.close()

    def consume() -> Iterator[T]:
        while True:
            item = channel.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    producer = threading.Thread(target=produce, name="ssi-prefetch")
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        producer.join()
