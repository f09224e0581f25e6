"""A connected client on top of the session's real node (``engine_url`` in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect


@pytest.fixture(scope="session")
def engine(engine_url: str) -> Iterator[EngineClient]:
    client = connect(EngineSettings(url=engine_url))
    yield client
    client.close()


@pytest.fixture
def index_name(engine: EngineClient) -> Iterator[str]:
    """A fresh index name per test; every index and alias starting with it is deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    engine.request("DELETE", f"/{name}*", params={"ignore_unavailable": "true", "expand_wildcards": "all"})
