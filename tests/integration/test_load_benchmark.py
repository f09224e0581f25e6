"""CI runs the load benchmark's quick mode: serve in its own process, ssi queries from 1, 4 and 16 clients at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssi_plugin.engine import EngineClient

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="a benchmark of the embedded default; serve's ssi "
                                                                      "queries are tested on both engines")]


def test_the_quick_load_run_answers_every_query_at_every_client_count(engine: EngineClient, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    report = tmp_path / "load.json"
    run = subprocess.run([sys.executable, "-m", "benchmarks.load", "--quick", "--json", str(report)], cwd=repo,
                         capture_output=True, text=True, timeout=900, check=False, env={**os.environ, "SSI_ENGINE_URL": engine.url})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    rows = json.loads(report.read_text(encoding="utf-8"))["runs"]
    assert [row["clients"] for row in rows] == [1, 4, 16]
    for row in rows:
        assert row["errors"] == 0 and row["errors_by_status"] == {}, row
        assert row["queries"] >= row["clients"] and row["queries_per_s"] > 0, row
        assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
    printed = [line.split() for line in run.stdout.splitlines()]
    table = [line for line in printed if line and line[0].isdigit()]
    assert [int(line[0]) for line in table] == [1, 4, 16], run.stdout
    assert all(line[-1] == "0" and float(line[1]) > 0 for line in table), run.stdout
