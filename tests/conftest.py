"""Session-wide fixtures: one real search node for every test that needs an engine.

``engine_url`` is ``SSI_ENGINE_URL`` when set; otherwise one local OpenSearch node
is started for the session, with its data in a temporary folder, and stopped at
the end. Launcher builds are shared with the user's cache (``SSI_LAUNCHER_CACHE``),
so Maven runs once per machine, not once per test run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ssi_plugin.config import default_cache_dir
from ssi_plugin.engine.local_node import LAUNCHER_CACHE_ENV, LocalNode


def pytest_configure(config: pytest.Config) -> None:
    user_cache = Path(os.environ.get("SSI_CACHE_DIR") or default_cache_dir())
    os.environ.setdefault(LAUNCHER_CACHE_ENV, str(user_cache / "launchers"))


@pytest.fixture(scope="session")
def engine_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a real cluster for this test session."""
    configured = os.environ.get("SSI_ENGINE_URL", "").strip()
    if configured:
        yield configured.rstrip("/")
        return
    node = LocalNode(tmp_path_factory.mktemp("engine-cache"))
    status = node.start(attached=True)  # gone with this process even if the session is killed
    assert status.url is not None
    try:
        yield status.url
    finally:
        node.stop()
