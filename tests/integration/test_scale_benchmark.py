"""CI runs the scale benchmark's quick mode: 10k identifiers in a real index, the live trie, serve, two replicas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssi_plugin.engine import EngineClient

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="a benchmark of the embedded default; the live trie's "
                                                                      "engine reads are tested on both engines")]


def test_the_quick_scale_run_takes_new_identifiers_in_and_answers_throughout(engine: EngineClient, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    png = tmp_path / "scale.png"
    run = subprocess.run([sys.executable, "-m", "benchmarks.scale", "--quick", "--png", str(png)], cwd=repo, capture_output=True,
                         text=True, timeout=900, check=False, env={**os.environ, "SSI_ENGINE_URL": engine.url})
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    figures = json.loads(run.stdout[run.stdout.index("{\n"):])["sizes"]["10000"]
    assert figures["update_errors"] == 0 and figures["update_queries"] > 0
    assert 0 < figures["freshness_s"] < 5 and 0 < figures["add_1k_s"] < 5
    assert figures["generate_p50_ms"] > 0 and figures["serve_p50_ms"] > 0 and figures["disk_bytes_per_image"] > 0
    assert 0 < figures["second_serve_uss_mib"] < figures["second_serve_rss_mib"]
    assert png.read_bytes().startswith(b"\x89PNG")
