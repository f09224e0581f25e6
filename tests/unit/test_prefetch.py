"""The background producer keeps order, raises its errors in the consumer and is stopped and joined when the block ends."""

from __future__ import annotations

import itertools
import threading

import pytest

from ssi_plugin.jobs.prefetch import prefetched


def _producers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "ssi-prefetch"]


def test_items_arrive_in_order() -> None:
    with prefetched(range(1000), buffer=7) as stream:
        assert list(stream) == list(range(1000))
    assert not _producers()


def test_a_producer_error_is_raised_in_the_consumer_after_the_items_before_it() -> None:
    def failing():
        yield 1
        yield 2
        raise ValueError("annotator broke")

    seen = []
    with pytest.raises(ValueError, match="annotator broke"), prefetched(failing()) as stream:
        seen.extend(stream)
    assert seen == [1, 2]


def test_leaving_the_block_early_stops_the_producer() -> None:
    produced = itertools.count()
    with prefetched((next(produced) for _ in itertools.repeat(None)), buffer=3) as stream:
        assert [next(stream) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert not _producers()
    assert next(produced) < 20, "the producer stopped a few items ahead, not at the end of an endless stream"


def test_a_consumer_error_joins_the_producer_and_closes_its_chain_even_while_the_error_is_held() -> None:
    """An engine outage raised in the consumer: the producer must be gone before the error is handled,
    although the error's traceback still references the stream (as the bulk helpers' frames do)."""
    closed = threading.Event()

    def chain():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    with pytest.raises(ConnectionError) as caught, prefetched(chain(), buffer=3) as stream:
        next(stream)
        raise ConnectionError("engine gone")
    assert caught.value.__traceback__ is not None
    assert not _producers()
    assert closed.is_set(), "the generator chain was closed in the producer's thread"


def test_the_producer_is_not_a_daemon_thread() -> None:
    """A daemon thread is killed mid-computation when the interpreter exits; that aborts native libraries."""
    started = threading.Event()

    def chain():
        started.set()
        yield from range(10)

    with prefetched(chain(), buffer=1) as stream:
        started.wait(5)
        assert [thread.daemon for thread in _producers()] == [False]
        next(stream)
