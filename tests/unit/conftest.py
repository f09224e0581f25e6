"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ssi_plugin.threads import intra_op_threads


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread; two threads on a busy 2-core machine spin-wait."""
    with intra_op_threads(1):
        yield
