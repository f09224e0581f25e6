"""The background producer keeps order, raises its errors in the consumer and stops when the consumer does."""

from __future__ import annotations

import itertools
import threading

import pytest

from ssi_plugin.indexing.prefetch import prefetched


def test_items_arrive_in_order() -> None:
    assert list(prefetched(range(1000), buffer=7)) == list(range(1000))


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def failing():
        yield 1
        yield 2
        raise ValueError("annotator broke")

    seen = []
    with pytest.raises(ValueError, match="annotator broke"):
        seen.extend(prefetched(failing()))
    assert seen == [1, 2]


def test_stopping_early_stops_the_producer() -> None:
    produced = itertools.count()
    stream = prefetched((next(produced) for _ in itertools.repeat(None)), buffer=3)
    assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    stream.close()
    assert not any(thread.name == "ssi-prefetch" for thread in threading.enumerate())
    assert next(produced) < 20, "the producer stopped a few items ahead, not at the end of an endless stream"
