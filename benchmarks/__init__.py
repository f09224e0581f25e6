"""Benchmarks of ssi-plugin, one module per area, and the runner that collects them into a report.

Every ``benchmarks/<area>.py`` exposes ``run(quick: bool) -> dict`` (figures by
name) and runs alone as ``python -m benchmarks.<area>``. ``python -m benchmarks``
runs them all, each in its own process (a crash, a hang or a leak in one area
cannot take the others down), and writes ``<out>/<timestamp>-<commit>.json``
and ``.md``: figures, the machine, the git commit, and each figure's change
against the previous report in the same folder, so runs compare.

    discover() -> list[str]                       area names
    run_areas(names, quick=..., timeout=...) -> dict[str, AreaResult]
    build_report(results, quick=...) -> dict       + machine and git
    write_report(report, out_dir) -> (json, md)
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import datetime
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
AreaResult = dict[str, Any]
"""``{"status": "ok" | "failed", "seconds": float, "figures": {...}}`` plus ``error`` when failed."""


def discover(package: str = __name__) -> list[str]:
    """Names of the benchmark modules (``benchmarks/<area>.py``), sorted; private modules are not areas."""
    folders = importlib.import_module(package).__path__
    return sorted(module.name for module in pkgutil.iter_modules(folders) if not module.name.startswith("_"))


def run_in_this_process(module_name: str, quick: bool, result_file: str) -> None:
    """Import ``module_name``, call its ``run(quick)`` and write the outcome to ``result_file`` (never raises)."""
    started = time.perf_counter()
    try:
        module = importlib.import_module(module_name)
        run = getattr(module, "run", None)
        if not callable(run):
            raise TypeError(f"{module_name} has no run(quick) function")
        figures = run(quick)
        if not isinstance(figures, dict):
            raise TypeError(f"{module_name}.run returned {type(figures).__name__}, not a dict of figures")
        result: AreaResult = {"status": "ok", "figures": _jsonable(figures)}
    except BaseException as exc:
        result = {"status": "failed", "figures": {}, "error": f"{type(exc).__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=-8)}
    result["seconds"] = round(time.perf_counter() - started, 2)
    Path(result_file).write_text(json.dumps(result, allow_nan=True), encoding="utf-8")


def run_area(area: str, *, quick: bool, timeout: float | None = None, package: str = __name__) -> AreaResult:
    """Run one area in a child interpreter; its output goes to the console, its figures come back as JSON."""
    with tempfile.TemporaryDirectory(prefix="ssi-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        code = f"import benchmarks; benchmarks.run_in_this_process({package + '.' + area!r}, {quick!r}, {str(result_file)!r})"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")]))}
        started = time.perf_counter()
        try:
            completed = subprocess.run([sys.executable, "-c", code], env=env, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"status": "failed", "figures": {}, "error": f"timed out after {timeout:g} s",
                    "seconds": round(time.perf_counter() - started, 2)}
        if result_file.is_file():
            return json.loads(result_file.read_text(encoding="utf-8"))
        return {"status": "failed", "figures": {}, "error": f"the benchmark process exited with code {completed.returncode}",
                "seconds": round(time.perf_counter() - started, 2)}


def run_areas(areas: list[str], *, quick: bool, timeout: float | None = None, package: str = __name__) -> dict[str, AreaResult]:
    """Run the areas one after another; a failed area is recorded and the next one runs."""
    results = {}
    for area in areas:
        print(f"== {package}.{area}{' (quick)' if quick else ''}", flush=True)
        results[area] = run_area(area, quick=quick, timeout=timeout, package=package)
        result = results[area]
        print(f"== {package}.{area}: {result['status']} in {result['seconds']:.1f} s"
              + (f": {result['error']}" if result["status"] == "failed" else ""), flush=True)
    return results


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "cpu_model": _first_value("/proc/cpuinfo", "model name"),
        "memory_gib": None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    total_kib = _first_value("/proc/meminfo", "MemTotal")
    if total_kib:
        info["memory_gib"] = round(int(total_kib.split()[0]) / 1024**2, 1)
    return info


def git_info() -> dict[str, Any]:
    """Commit, branch and whether tracked files differ from it; ``None`` values outside a git checkout."""

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(["git", *args], cwd=REPO_DIR, capture_output=True, text=True, check=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "short": commit[:10] if commit else None, "branch": git("rev-parse", "--abbrev-ref", "HEAD"),
            "dirty": None if status is None else bool(status)}


def build_report(results: dict[str, AreaResult], *, quick: bool, created: datetime | None = None) -> dict[str, Any]:
    created = created or datetime.now().astimezone()
    return {"format": "ssi-plugin/benchmark-report", "format_version": 1, "created": created.isoformat(timespec="seconds"),
            "quick": quick, "git": git_info(), "machine": machine_info(), "areas": results}


def previous_report(out_dir: Path, *, before: str) -> dict[str, Any] | None:
    """The newest report in ``out_dir`` created before ``before`` (ISO time), if any."""
    reports = []
    for path in out_dir.glob("*.json"):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(report, dict) and report.get("format") == "ssi-plugin/benchmark-report" and report.get("created", "") < before:
            reports.append(report)
    return max(reports, key=lambda report: report["created"], default=None)


def markdown(report: dict[str, Any], previous: dict[str, Any] | None = None) -> str:
    """The report for people: one table per area, each figure beside its value in the previous report."""
    git, machine = report["git"], report["machine"]
    lines = [
        f"# ssi-plugin benchmarks, {report['created']}{' (quick)' if report['quick'] else ''}",
        "",
        f"- commit: `{git['short']}` on `{git['branch']}`{' with uncommitted changes' if git['dirty'] else ''}",
        (f"- machine: {machine['cpus']} × {machine['cpu_model']}, {machine['memory_gib']} GiB, Python {machine['python']}, "
         f"load {machine['load_average_1m']} at start"),
    ]
    if previous:
        lines.append(f"- compared with: {previous['created']} (commit `{previous['git'].get('short')}`"
                     f"{', quick' if previous.get('quick') else ''})")
    lines.append("")
    for area, result in report["areas"].items():
        lines += [f"## {area}: {result['status']} ({result['seconds']:.1f} s)", ""]
        if result["status"] != "ok":
            lines += [f"`{result.get('error', 'unknown error')}`", ""]
        before = ((previous or {}).get("areas", {}).get(area) or {}).get("figures", {})
        rows = _flatten(result.get("figures", {}))
        if rows:
            lines += ["| figure | value | previous | change |", "|---|---:|---:|---:|"]
            old = _flatten(before)
            for name, value in rows.items():
                lines.append(f"| {name} | {_cell(value)} | {_cell(old.get(name))} | {_change(value, old.get(name))} |")
            lines.append("")
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write ``<timestamp>-<commit>.json`` and ``.md`` into ``out_dir``; the markdown compares with the previous report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = report["created"][:19].replace(":", "").replace("-", "")
    stem = f"{stamp}-{report['git']['short'] or 'nogit'}"
    json_path, md_path = out_dir / f"{stem}.json", out_dir / f"{stem}.md"
    previous = previous_report(out_dir, before=report["created"])
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report, previous) + "\n", encoding="utf-8")
    return json_path, md_path


def _first_value(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key:
                return value.strip()
    except OSError:
        pass
    return None


def _jsonable(value: Any) -> Any:
    """Figures as JSON values: numpy scalars become numbers, paths and others their text."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def _flatten(figures: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for name, value in figures.items():
        if isinstance(value, dict):
            rows.update(_flatten(value, f"{prefix}{name}."))
        else:
            rows[f"{prefix}{name}"] = value
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = json.dumps(value) if isinstance(value, list) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _change(value: Any, old: Any) -> str:
    numeric = (int, float)
    if isinstance(value, bool) or isinstance(old, bool) or not isinstance(value, numeric) or not isinstance(old, numeric):
        return ""
    if old == 0 or not math.isfinite(old) or not math.isfinite(value):
        return ""
    return f"{100 * (value - old) / abs(old):+.1f}%"
