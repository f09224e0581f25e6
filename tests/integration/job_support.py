"""Shared by the tests that run long jobs as the real command and break them: run, watch, check the outcome."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import connect
from ssi_plugin.engine.scan import scan

ERROR_NAMES = ("EngineUnreachable", "EngineError", "EngineRequestError", "ShardsFailed", "OutputUnwritable", "Interrupted",
               "Traceback")
"""How the line naming a job's failure starts (a traceback counts as one, and fails the check)."""


def command(*args: str, check: bool = True, **popen: object) -> subprocess.CompletedProcess[str]:
    """Run ``ssi-plugin ARGS`` to its end; with ``check``, it must exit 0."""
    result = subprocess.run([sys.executable, "-m", "ssi_plugin", *args], capture_output=True, text=True, timeout=600, **popen)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _as_in_a_terminal() -> None:
    """Ctrl-C reaches a job run in a terminal; a test run started in the background (``cmd &``) would pass its
    ignored SIGINT on to the job, and Python leaves an ignored SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_job(*args: str, **popen: object) -> subprocess.Popen[str]:
    """Start ``ssi-plugin ARGS`` in the background, its output captured."""
    return subprocess.Popen([sys.executable, "-m", "ssi_plugin", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=_as_in_a_terminal, **popen)


def count(url: str, index: str) -> int:
    """The documents ``index`` holds (as last refreshed), 0 when the cluster does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/{index}/_count", timeout=5) as answer:
            return int(json.load(answer)["count"])
    except (urllib.error.URLError, OSError):
        return 0


def assert_one_line(stderr: str, code: int, expected_code: int, line_start: str | tuple[str, ...]) -> None:
    """The job exited with ``expected_code`` and named its failure in exactly one line, starting ``line_start``."""
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "Aborting" not in stderr, stderr[-3000:]
    assert code == expected_code, stderr[-3000:]
    named = [line for line in stderr.splitlines() if line.startswith(ERROR_NAMES)]
    assert len(named) == 1, stderr[-3000:]
    assert named[0].startswith(line_start), named


def index_ids(url: str, index: str) -> list[str]:
    """Every document id of ``index``, read after a refresh (a repeated id would appear twice)."""
    with connect(EngineSettings(url=url)) as engine:
        engine.refresh(index)
        return [hit["_id"] for hit in scan(engine, index, source=False)]


def dataset_ids(dataset: Path) -> set[str]:
    return {json.loads(line)["id"] for line in dataset.read_text(encoding="utf-8").splitlines()}
