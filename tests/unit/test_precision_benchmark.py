"""``python -m benchmarks.precision --quick``: both precisions measured on the default architecture, the promise kept in both.

Run as a command, in a process of its own: it sets the process's thread pools as ``serve`` does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.precision import PRECISIONS

ROOT = Path(__file__).resolve().parents[2]


def test_the_quick_run_measures_both_precisions_and_each_answers_batched_as_alone() -> None:
    done = subprocess.run([sys.executable, "-m", "benchmarks.precision", "--quick"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)
    assert figures["queries"] == 20 and "1,000 synthetic identifiers" in figures["model"]
    for name in PRECISIONS:
        measured = figures[name]
        assert measured["alone_p50_ms"] > 0 and measured["concurrent_queries_per_s"] > 0, measured
        # Under 16 concurrent callers every query's identifiers and scores are those it gets alone.
        assert measured["batched_as_alone"] == measured["batched_same_best"] == 1.0, measured
    assert 0 <= figures["int8_same_best"] <= 1
