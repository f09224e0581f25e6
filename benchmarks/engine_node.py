"""Local node figures: time to a ready node and the JVM's resident memory, for each engine.

    python -m benchmarks.engine_node            # warm: the launcher is already built
    python -m benchmarks.engine_node --cold     # also a first use with an empty Maven repository

OpenSearch figures are ``warm_start_s``, ``rss_mib``...; the Elasticsearch core node's
carry an ``es_`` prefix (left out, with a note, when its Java 21+ is missing).
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
from ssi_plugin.errors import PrerequisiteMissing


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def _cpu_s(pid: int) -> float:
    """CPU time the process has used (user + system): a start-up cost that does not depend on other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed_start(cache_dir: Path, kind: str = "opensearch") -> tuple[float, float, float]:
    """Seconds from the call to a ready node, the JVM's CPU seconds and its RSS in MiB then; the node is stopped again."""
    node = LocalNode(cache_dir, kind=kind)
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


def _warm_figures(work: Path, kind: str, starts: int) -> dict[str, float | int]:
    LocalNode(work / f"{kind}-warm", kind=kind).prepare()  # builds the launcher if needed, outside the timings
    runs = [_timed_start(work / f"{kind}-warm{i}", kind) for i in range(starts)]
    return {
        "warm_start_s": round(statistics.median(s for s, _, _ in runs), 1),
        "warm_start_jvm_cpu_s": round(statistics.median(c for _, c, _ in runs), 1),
        "rss_mib": round(statistics.median(r for _, _, r in runs)),
        "starts": len(runs),
    }


def run(quick: bool, *, cold: bool = False) -> dict:
    os.environ.setdefault(LAUNCHER_CACHE_ENV, str(Path(os.environ.get("SSI_CACHE_DIR") or default_cache_dir()) / "launchers"))
    figures: dict[str, float | int] = {}
    starts = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="ssi-bench-node-") as tmp:
        work = Path(tmp)
        if cold:
            figures["cold_start_s"] = round(_cold_start(work), 1)
        figures.update(_warm_figures(work, "opensearch", starts))
        try:
            figures.update({f"es_{key}": value for key, value in _warm_figures(work, "elasticsearch", starts).items()})
        except PrerequisiteMissing as exc:
            print(f"Elasticsearch core node not measured: {exc}", file=sys.stderr)
    figures["load_average"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv, cold="--cold" in sys.argv)
