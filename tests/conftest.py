"""Session-wide fixtures: real search nodes for every test that needs an engine.

A test that asks for ``engine_url`` (or for ``engine`` / ``index_name`` of
tests/integration) runs on both engines, with ids ending ``[opensearch]`` and
``[elasticsearch]``; ``-k opensearch`` or ``-k elasticsearch`` runs one leg.

- OpenSearch: ``SSI_ENGINE_URL`` when set, otherwise one local node for the session.
- Elasticsearch: ``SSI_ELASTICSEARCH_URL`` when set, otherwise one local Elasticsearch
  core node (integration/elasticsearch/), started when the first test needs it.

Each node starts once, with its data in a temporary folder, and stops at the end.
A test that needs what the Elasticsearch core node lacks is marked
``@pytest.mark.opensearch_only(reason=...)``: its Elasticsearch run is skipped with
that reason, which names the missing module. Without a Java 21+ the Elasticsearch runs are skipped and the summary
says so, unless ``SSI_REQUIRE_ELASTICSEARCH=1`` (CI) makes that an error.

Launcher builds are shared with the user's cache (``SSI_LAUNCHER_CACHE``), so Maven
runs once per machine, not once per test run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssi_plugin.config import default_cache_dir
from ssi_plugin.engine.local_node import LAUNCHER_CACHE_ENV, LocalNode, NodeStatus
from ssi_plugin.errors import PrerequisiteMissing

ENGINE_KINDS = ("opensearch", "elasticsearch")
ELASTICSEARCH_URL_ENV = "SSI_ELASTICSEARCH_URL"
REQUIRE_ELASTICSEARCH_ENV = "SSI_REQUIRE_ELASTICSEARCH"
_ES_UNAVAILABLE = pytest.StashKey[str]()


def pytest_configure(config: pytest.Config) -> None:
    user_cache = Path(os.environ.get("SSI_CACHE_DIR") or default_cache_dir())
    os.environ.setdefault(LAUNCHER_CACHE_ENV, str(user_cache / "launchers"))
    config.addinivalue_line(
        "markers",
        "opensearch_only(reason): runs on OpenSearch only; the reason names what the Elasticsearch core node lacks, or why not",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that needs an engine runs on each kind; module scope keeps module fixtures to one set-up per kind."""
    if "engine_kind" not in metafunc.fixturenames:
        return
    only = metafunc.definition.get_closest_marker("opensearch_only")
    if only is not None and not only.kwargs.get("reason"):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: opensearch_only needs reason=...")
    skip_es = [pytest.mark.skip(reason=f"OpenSearch only: {only.kwargs['reason']}")] if only else []
    metafunc.parametrize(
        "engine_kind",
        [pytest.param("opensearch", id="opensearch"), pytest.param("elasticsearch", id="elasticsearch", marks=skip_es)],
        indirect=True,
        scope="module",
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    reason = config.stash.get(_ES_UNAVAILABLE, None)
    if reason:
        terminalreporter.write_sep("=", "the Elasticsearch leg did not run", yellow=True)
        terminalreporter.write_line(reason)


@pytest.fixture(scope="session")
def engine_kind(request: pytest.FixtureRequest) -> str:
    """Which engine this run of the test is on (set by ``pytest_generate_tests``)."""
    return request.param


@pytest.fixture(scope="session")
def engine_url(engine_kind: str, request: pytest.FixtureRequest) -> str:
    """The URL of a real cluster of ``engine_kind`` for this test session."""
    return request.getfixturevalue(f"{engine_kind}_url")


def _start(node: LocalNode) -> NodeStatus:
    status = node.start(attached=True)  # gone with this process even if the session is killed
    assert status.url is not None
    return status


@pytest.fixture(scope="session")
def opensearch_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("SSI_ENGINE_URL", "").strip()
    if configured:
        yield configured.rstrip("/")
        return
    node = LocalNode(tmp_path_factory.mktemp("engine-cache"))
    status = _start(node)
    try:
        yield str(status.url)
    finally:
        node.stop()


@pytest.fixture(scope="session")
def elasticsearch_node(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[NodeStatus | None]:
    """The local Elasticsearch core node's status, or None when ``SSI_ELASTICSEARCH_URL`` names a cluster."""
    if os.environ.get(ELASTICSEARCH_URL_ENV, "").strip():
        yield None
        return
    node = LocalNode(tmp_path_factory.mktemp("es-cache"), kind="elasticsearch")
    try:
        status = _start(node)
    except PrerequisiteMissing as exc:
        if os.environ.get(REQUIRE_ELASTICSEARCH_ENV) == "1":
            raise
        request.config.stash[_ES_UNAVAILABLE] = str(exc)
        pytest.skip("no local Elasticsearch node: a prerequisite is missing (the summary says which)")
    try:
        yield status
    finally:
        node.stop()


@pytest.fixture(scope="session")
def elasticsearch_url(elasticsearch_node: NodeStatus | None) -> str:
    if elasticsearch_node is None:
        return os.environ[ELASTICSEARCH_URL_ENV].strip().rstrip("/")
    return str(elasticsearch_node.url)
