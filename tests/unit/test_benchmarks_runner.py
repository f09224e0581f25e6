"""The benchmark runner: every area runs in its own process, a failing one is recorded, reports compare runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import benchmarks

AREAS = {
    "fast": "def run(quick):\n    return {'items_per_s': 100.0 if quick else 10.0, 'nested': {'p50_ms': 2.5}, 'name': 'x'}\n",
    "broken": "def run(quick):\n    raise RuntimeError('the node did not start')\n",
    "crash": "import os\ndef run(quick):\n    os._exit(9)\n",
    "slow": "import time\ndef run(quick):\n    time.sleep(60)\n    return {}\n",
    "wrong": "def run(quick):\n    return [1, 2]\n",
    "_helper": "raise ImportError('a private module is not an area')\n",
}


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    package = tmp_path / "fakebench"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name, code in AREAS.items():
        (package / f"{name}.py").write_text(code)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    return "fakebench"


def test_areas_are_the_public_modules(fake_package: str) -> None:
    assert benchmarks.discover(fake_package) == ["broken", "crash", "fast", "slow", "wrong"]
    assert "engine_node" in benchmarks.discover()


def test_failures_are_recorded_not_raised(fake_package: str) -> None:
    results = benchmarks.run_areas(["fast", "broken", "crash", "slow", "wrong"], quick=True, timeout=20, package=fake_package)
    assert results["fast"]["status"] == "ok"
    assert results["fast"]["figures"] == {"items_per_s": 100.0, "nested": {"p50_ms": 2.5}, "name": "x"}
    assert results["broken"] == {**results["broken"], "status": "failed", "error": "RuntimeError: the node did not start"}
    assert "the node did not start" in results["broken"]["traceback"]
    assert results["crash"]["status"] == "failed" and "exited with code 9" in results["crash"]["error"]
    assert results["slow"]["status"] == "failed" and "timed out after 20 s" in results["slow"]["error"]
    assert results["wrong"]["status"] == "failed" and "not a dict" in results["wrong"]["error"]


def test_report_records_machine_commit_and_compares_with_the_previous_run(fake_package: str, tmp_path: Path) -> None:
    first = benchmarks.build_report(benchmarks.run_areas(["fast"], quick=False, package=fake_package), quick=False)
    first["created"] = "2000-01-01T00:00:00+00:00"
    benchmarks.write_report(first, tmp_path / "reports")

    second = benchmarks.build_report(benchmarks.run_areas(["fast", "broken"], quick=True, package=fake_package), quick=True)
    json_path, md_path = benchmarks.write_report(second, tmp_path / "reports")

    saved = json.loads(json_path.read_text())
    assert saved["git"]["commit"] and len(saved["git"]["commit"]) == 40
    assert saved["machine"]["cpus"] >= 1 and saved["machine"]["python"]
    assert saved["areas"]["fast"]["figures"]["items_per_s"] == 100.0
    text = md_path.read_text()
    assert "| items_per_s | 100 | 10 | +900.0% |" in text
    assert "| nested.p50_ms | 2.5 | 2.5 | +0.0% |" in text
    assert "## broken: failed" in text and "RuntimeError: the node did not start" in text
    assert "compared with: 2000-01-01T00:00:00+00:00" in text


def test_command_line_writes_a_report_and_fails_on_a_bad_area(tmp_path: Path) -> None:
    repo = Path(benchmarks.__file__).resolve().parent.parent
    bad = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "no-such-area"], cwd=repo, capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


@pytest.mark.engine
def test_quick_smoke_of_a_real_area(tmp_path: Path) -> None:
    """CI's smoke: the real command, one cheap area, --quick."""
    repo = Path(benchmarks.__file__).resolve().parent.parent
    out = tmp_path / "reports"
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--quick", "--only", "engine_node", "--out", str(out)],
                         cwd=repo, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    (report,) = out.glob("*.json")
    figures = json.loads(report.read_text())["areas"]["engine_node"]["figures"]
    assert figures["warm_start_s"] > 0 and figures["starts"] == 1
    assert "warm_start_s" in report.with_suffix(".md").read_text()
