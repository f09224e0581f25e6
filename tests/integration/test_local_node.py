"""``ssi-plugin engine start|status|stop`` against a real local OpenSearch node.

Each test runs the command line as a user would (a separate process), in its own
cache directory, and checks what the user sees: exit codes, one-line messages,
and a node that answers HTTP while it runs and is gone after ``stop``. Only two
tests start a JVM; the others fail before one would start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ssi_plugin.engine import local_node
from ssi_plugin.engine.local_node import LocalNode
from ssi_plugin.errors import LocalNodeError, PrerequisiteMissing

MODULES = {
    "org.opensearch.transport.Netty4Plugin",
    "org.opensearch.ingest.common.IngestCommonPlugin",
    "org.opensearch.painless.PainlessPlugin",
    "org.opensearch.index.reindex.ReindexPlugin",
    "org.opensearch.script.mustache.MustachePlugin",
    "org.opensearch.analysis.common.CommonAnalysisPlugin",
    "org.opensearch.index.mapper.MapperExtrasPlugin",
    "org.opensearch.knn.plugin.KNNPlugin",  # unpacked from its plugin zip; Lucene engine only
}


def ssi(*args: str, cache_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``ssi-plugin engine ...`` in a fresh process, with no cluster URL configured."""
    environment = {k: v for k, v in os.environ.items() if k not in ("SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "ssi_plugin", "engine", *args, "--cache-dir", str(cache_dir)],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        timeout=900,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 4 and the reason on the last line of stderr (progress lines may come before it)."""
    assert result.returncode == 4, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(("LocalNodeError: ", "PrerequisiteMissing: ")), result.stderr
    for fragment in fragments:
        assert fragment in message


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.mark.engine
def test_start_status_stop(cache_dir: Path) -> None:
    assert ssi("status", cache_dir=cache_dir).returncode == 1
    assert_one_line_error(ssi("stop", cache_dir=cache_dir), "no local opensearch node is running")

    started = ssi("start", cache_dir=cache_dir)
    assert started.returncode == 0, started.stderr
    url = started.stdout.split(" ready at ")[1].split()[0]
    try:
        root = httpx.get(url).json()
        assert root["version"]["distribution"] == "opensearch"
        assert root["version"]["number"].startswith("2.19.")
        plugins = {row["component"] for row in httpx.get(f"{url}/_cat/plugins", params={"format": "json"}).json()}
        assert plugins >= MODULES
        node = next(iter(httpx.get(f"{url}/_nodes/_local").json()["nodes"].values()))
        assert "ingest" in node["roles"]
        assert node["settings"]["network"]["host"] == "127.0.0.1"

        status = ssi("status", cache_dir=cache_dir)
        assert status.returncode == 0
        assert f"at {url}" in status.stdout

        assert_one_line_error(ssi("start", cache_dir=cache_dir), "already running at", url)
    finally:
        stopped = ssi("stop", cache_dir=cache_dir)
    assert stopped.returncode == 0, stopped.stderr
    assert "Stopped" in stopped.stdout
    with pytest.raises(httpx.TransportError):
        httpx.get(url, timeout=2)
    assert ssi("status", cache_dir=cache_dir).returncode == 1
    assert_one_line_error(ssi("stop", cache_dir=cache_dir), "nothing to stop")


@pytest.mark.engine
def test_start_heals_a_damaged_cache(cache_dir: Path) -> None:
    """A stale state file of a dead process and a stray plugin folder do not block a start."""
    node_dir = cache_dir / "opensearch"
    (node_dir / "home" / "plugins" / "stray-plugin").mkdir(parents=True)
    (node_dir / "node.json").write_text(json.dumps({"pid": _dead_pid(), "port": 1, "url": "http://127.0.0.1:1"}))

    started = ssi("start", cache_dir=cache_dir)
    assert started.returncode == 0, started.stderr
    assert "stray-plugin" in started.stderr
    assert ssi("stop", cache_dir=cache_dir).returncode == 0


def test_garbage_state_file_reads_as_not_running(cache_dir: Path) -> None:
    node_dir = cache_dir / "opensearch"
    node_dir.mkdir(parents=True)
    (node_dir / "node.json").write_text("{not json")
    assert ssi("status", cache_dir=cache_dir).returncode == 1
    assert_one_line_error(ssi("stop", cache_dir=cache_dir), "nothing to stop")


def test_port_taken_is_named(cache_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = ssi("start", "--port", str(port), cache_dir=cache_dir)
    assert_one_line_error(result, f"port {port}", "already in use")
    assert ssi("status", cache_dir=cache_dir).returncode == 1


def test_data_dir_that_is_a_file(cache_dir: Path) -> None:
    data = LocalNode(cache_dir).data_dir
    data.parent.mkdir(parents=True)
    data.write_text("not a folder")
    assert_one_line_error(ssi("start", cache_dir=cache_dir), str(data), "is a file")


def test_missing_maven_is_named(cache_dir: Path, tmp_path: Path) -> None:
    java = local_node.find_java(local_node._LAUNCHERS["opensearch"])
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    env = {"PATH": str(empty_bin), "JAVA_HOME": str(java.parent.parent), local_node.LAUNCHER_CACHE_ENV: str(tmp_path / "builds")}
    assert_one_line_error(ssi("start", cache_dir=cache_dir, env=env), "mvn", "apt-get install maven")


def test_missing_java_is_named(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(local_node, "_JVM_ROOTS", ())
    with pytest.raises(PrerequisiteMissing, match=r"java .*openjdk-17-jdk-headless"):
        LocalNode(cache_dir).start()


def _copy_integration(tmp_path: Path) -> Path:
    """The launchers' sources (every project and the shared folder), copied to be edited."""
    integration = local_node._project_dir(local_node._LAUNCHERS["opensearch"]).parent
    return Path(shutil.copytree(integration, tmp_path / "integration", ignore=shutil.ignore_patterns("target")))


def test_edited_shared_sources_rebuild_every_launcher(tmp_path: Path) -> None:
    integration = _copy_integration(tmp_path)
    projects = [integration / launcher.project for launcher in local_node._LAUNCHERS.values()]
    before = [local_node._source_hash(project) for project in projects]
    shared = next((integration / "launcher-common").rglob("LauncherSupport.java"))
    shared.write_text(shared.read_text() + "\n// edited\n")
    after = [local_node._source_hash(project) for project in projects]
    assert all(old != new for old, new in zip(before, after, strict=True))


def test_maven_failure_shows_its_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = _copy_integration(tmp_path) / "opensearch"
    source = next(project.rglob("OpenSearchLauncher.java"))
    source.write_text(source.read_text() + "\nthis is not java\n")
    monkeypatch.setattr(local_node, "_project_dir", lambda launcher: project)
    monkeypatch.setenv(local_node.LAUNCHER_CACHE_ENV, str(tmp_path / "builds"))
    with pytest.raises(LocalNodeError, match="launcher with Maven failed") as failure:
        LocalNode(tmp_path / "cache").prepare()
    assert re.search(r"OpenSearchLauncher\.java:\[\d+,\d+\]", str(failure.value))
    assert "Re-run Maven" not in str(failure.value)


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid
