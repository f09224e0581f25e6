"""Run a producer in a background thread so that annotating and indexing overlap.

While the main thread waits on a bulk request (the engine indexing, the GIL
released), the producer annotates the next batch; on two cores that keeps both
busy. The queue is bounded, so memory stays flat; an exception in the producer
is raised in the consumer; stopping early (or failing) stops the producer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


class _Done:
    """What the producer puts in the channel after the last item."""


_DONE = _Done()


def prefetched(items: Iterable[T], *, buffer: int = 1000) -> Iterator[T]:
    """Yield ``items`` in order, produced ``buffer`` ahead by a background thread."""
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
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put(exc)
            return
        put(_DONE)

    producer = threading.Thread(target=produce, name="ssi-prefetch", daemon=True)
    producer.start()
    try:
        while True:
            item = channel.get()
            if isinstance(item, _Done):
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()
