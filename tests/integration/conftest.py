"""A connected client on top of the session's real node (``engine_url`` in tests/conftest.py), on each engine."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect


@pytest.fixture(scope="session")
def engine(engine_url: str, engine_kind: str) -> Iterator[EngineClient]:
    client = connect(EngineSettings(url=engine_url))
    if client.kind != engine_kind:
        client.close()
        pytest.fail(f"the {engine_kind} leg's cluster at {engine_url} runs {client.kind} (SSI_ENGINE_URL is the OpenSearch leg, "
                    "SSI_ELASTICSEARCH_URL the Elasticsearch leg)")
    yield client
    client.close()


@pytest.fixture
def index_name(engine: EngineClient) -> Iterator[str]:
    """A fresh index name per test; every index (and so alias) starting with it is deleted afterwards.

    Indices are deleted by their names: Elasticsearch refuses wildcard deletes by default.
    """
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    created = engine.request("GET", f"/{name}*/_alias", params={"expand_wildcards": "all"})
    if created:
        engine.request("DELETE", "/" + ",".join(sorted(created)), params={"ignore_unavailable": "true"})


@pytest.fixture
def trained_index(engine: EngineClient, index_name: str, tmp_path: Path) -> tuple[str, Path]:
    """An index of SSI documents and, in a cache folder, the generator ``train`` would have left for it."""
    from tiny_generator import index_with_generator  # torch: only for the tests that ask

    index_with_generator(engine, index_name, tmp_path / "cache")
    return index_name, tmp_path / "cache"
