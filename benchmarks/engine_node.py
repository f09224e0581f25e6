"""Local node figures: time to a ready node and the JVM's resident memory.

    python -m benchmarks.engine_node            # warm: the launcher is already built
    python -m benchmarks.engine_node --cold     # also a first use with an empty Maven repository

Warm starts use the shared launcher build (``SSI_LAUNCHER_CACHE``, else the user's
cache) and a fresh data folder each time. The cold start points Maven at an empty
local repository, so it downloads every artifact (about 100 MB) and builds the launcher.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from ssi_plugin.config import default_cache_dir
from ssi_plugin.engine.local_node import LAUNCHER_CACHE_ENV, LocalNode


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_s(pid: int) -> float:
    """CPU time the process has used (user + system): a start-up cost that does not depend on other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_start(cache_dir: Path) -> tuple[float, float, float]:
    """Seconds from the call to a ready node, the JVM's CPU seconds and its RSS in MiB then; the node is stopped again."""
    node = LocalNode(cache_dir)
    started = time.monotonic()
    status = node.start(attached=True)
    seconds = time.monotonic() - started
    assert status.pid is not None
    cpu, rss = _cpu_s(status.pid), _rss_mib(status.pid)
    node.stop()
    return seconds, cpu, rss


def _cold_start(work: Path) -> float:
    """First use on a machine: empty Maven repository, no launcher build."""
    saved = {key: os.environ.get(key) for key in ("MAVEN_OPTS", LAUNCHER_CACHE_ENV)}
    os.environ["MAVEN_OPTS"] = f"{saved['MAVEN_OPTS'] or ''} -Dmaven.repo.local={work / 'm2'}".strip()
    os.environ[LAUNCHER_CACHE_ENV] = str(work / "launchers")
    try:
        return _timed_start(work / "cold")[0]
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(quick: bool, *, cold: bool = False) -> dict:
    os.environ.setdefault(LAUNCHER_CACHE_ENV, str(Path(os.environ.get("SSI_CACHE_DIR") or default_cache_dir()) / "launchers"))
    figures: dict[str, float | int] = {}
    with tempfile.TemporaryDirectory(prefix="ssi-bench-node-") as tmp:
        work = Path(tmp)
        if cold:
            figures["cold_start_s"] = round(_cold_start(work), 1)
        LocalNode(work / "warm").prepare()  # builds the launcher if needed, outside the timings
        runs = [_timed_start(work / f"warm{i}") for i in range(1 if quick else 3)]
    figures["warm_start_s"] = round(statistics.median(s for s, _, _ in runs), 1)
    figures["warm_start_jvm_cpu_s"] = round(statistics.median(c for _, c, _ in runs), 1)
    figures["rss_mib"] = round(statistics.median(r for _, _, r in runs))
    figures["starts"] = len(runs)
    figures["load_average"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv, cold="--cold" in sys.argv)
