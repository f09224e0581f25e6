"""``ssi`` queries under concurrent load: 1, 4 and 16 clients against ``ssi-plugin serve`` in a process of its own.

The index holds the synthetic corpus's SSI fields (as ``benchmarks.scale``) and the
generator is the default architecture as initialised (untrained, as in
``benchmarks.scale``: flat distributions, an upper bound for a trained model's
decoding time); ``--index`` and ``--model`` run on an existing index and
generator folder instead (left as they are). Each client is a thread with its
own kept-alive connection that sends ``POST /<index>/_search`` with
``{"query": {"ssi": {"query": <caption>}}}`` bodies, one after another, for a
fixed time. Per client count:

- ``queries_per_s``: answers (of any status) over the time the clients ran;
- ``p50_ms`` / ``p95_ms`` / ``p99_ms``: latency of every query, errors included;
- ``errors``: answers other than 200 and requests that got no answer, by status
  (``errors_by_status``); never left out of the figures.

Target (issue 18): at least 50 queries/s with p99 at most 200 ms at 16 clients on a 2-core machine.

    python -m benchmarks.load [--quick] [--json FILE]     # quick: 2k images, 3 s per client count (CI runs it)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from benchmarks.scale import QUERIES, SEED, _fill, _generator_folder, _percentile, serve_process
from ssi_plugin.config import EngineSettings
from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.layout import index_body, install_layout
from ssi_plugin.errors import EngineError
from ssi_plugin.identifiers import CollisionResolver

CLIENTS = (1, 4, 16)
TARGETS = {"queries_per_s_min_at_16": 50.0, "p99_ms_max_at_16": 200.0}


def drive(url: str, index: str, texts: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` threads sending ssi queries to ``url`` for ``seconds``; the figures of the run."""
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    deadline = 0.0

    def client(offset: int) -> None:
        mine: list[float] = []
        seen: Counter[str] = Counter()
        with httpx.Client(base_url=url, timeout=60) as http:
            n = offset
            start.wait()
            while time.perf_counter() < deadline:
                body = {"size": 10, "_source": False, "query": {"ssi": {"query": texts[n % len(texts)]}}}
                started = time.perf_counter()
                try:
                    seen[str(http.post(f"/{index}/_search", json=body).status_code)] += 1
                except httpx.HTTPError as exc:
                    seen[type(exc).__name__] += 1
                mine.append((time.perf_counter() - started) * 1000)
                n += clients
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(clients)]
    for thread in threads:
        thread.start()
    began = time.perf_counter()
    deadline = began + seconds
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    errors = {status: count for status, count in sorted(statuses.items()) if status != "200"}
    return {"clients": clients, "queries": len(latencies), "seconds": round(elapsed, 2),
            "queries_per_s": round(len(latencies) / elapsed, 1), "p50_ms": _percentile(latencies, 50),
            "p95_ms": _percentile(latencies, 95), "p99_ms": _percentile(latencies, 99), "errors": sum(errors.values()),
            "errors_by_status": errors}


def table(rows: list[dict[str, Any]]) -> str:
    """The figures as a plain-text table, one row per client count."""
    header = f"{'clients':>7}  {'queries/s':>9}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}  {'errors':>6}"
    lines = [header, "-" * len(header)]
    lines += [f"{row['clients']:>7}  {row['queries_per_s']:>9.1f}  {row['p50_ms']:>8.1f}  {row['p95_ms']:>8.1f}  "
              f"{row['p99_ms']:>8.1f}  {row['errors']:>6}" + (f"  {json.dumps(row['errors_by_status'])}" if row["errors"] else "")
              for row in rows]
    return "\n".join(lines)


def _synthetic_index(engine: EngineClient, size: int) -> str:
    index = f"bench-load-{size}-{uuid.uuid4().hex[:6]}"
    install_layout(engine)
    engine.request("PUT", f"/{index}", body=index_body())
    _fill(engine, index, 0, size, CollisionResolver())
    return index


def run(quick: bool = False, *, index: str | None = None, model: Path | None = None, seconds: float | None = None,
        clients: tuple[int, ...] = CLIENTS, serve_options: tuple[str, ...] = ()) -> dict[str, Any]:
    size, seconds = (2_000, seconds or 3.0) if quick else (100_000, seconds or 20.0)
    texts = [synthetic_record(SEED + 1, n)[0].captions[-1] for n in range(QUERIES)]
    with tempfile.TemporaryDirectory(prefix="ssi-bench-load-") as scratch, connect(EngineSettings()) as engine:
        figures: dict[str, Any] = {"engine": f"{engine.kind} {engine.info.version}", "seconds_per_run": seconds,
                                   "load_average_1m": round(os.getloadavg()[0], 2)}
        owned = index is None
        if owned:
            started = time.perf_counter()
            index = _synthetic_index(engine, size)
            figures.update(images=size, fill_s=round(time.perf_counter() - started, 1))
        try:
            folder = model or _generator_folder(Path(scratch) / "generator")
            figures["index"] = index
            with serve_process(engine.url, index, folder, Path(scratch) / "cache", texts[0], options=serve_options) as (url, _):
                rows = [drive(url, index, texts, count, seconds) for count in clients]
        finally:
            if owned:
                try:
                    engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
                except EngineError as exc:  # the figures stand; say what is left behind
                    print(f"benchmarks.load: could not delete {index}: {exc}", file=sys.stderr)
    figures["runs"] = rows
    figures["targets"] = TARGETS
    at_16 = next((row for row in rows if row["clients"] == 16), None)
    if at_16 is not None:
        figures["target_met"] = (at_16["errors"] == 0 and at_16["queries_per_s"] >= TARGETS["queries_per_s_min_at_16"]
                                 and at_16["p99_ms"] <= TARGETS["p99_ms_max_at_16"])
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k images, 3 s per client count")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here as JSON")
    parser.add_argument("--seconds", type=float, help="how long each client count runs (default: 20, quick: 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="client counts (default: 1 4 16)")
    parser.add_argument("--index", help="an existing index to query (left as it is) instead of a synthetic one")
    parser.add_argument("--model", type=Path, help="generator folder for --index (default: the untrained default architecture)")
    parser.add_argument("--ssi-concurrency", type=int, help="passed to serve")
    args = parser.parse_args(argv)
    if args.model and not args.index:
        parser.error("--model goes with --index")
    options = ("--ssi-concurrency", str(args.ssi_concurrency)) if args.ssi_concurrency else ()
    figures = run(args.quick, index=args.index, model=args.model, seconds=args.seconds, clients=tuple(args.clients),
                  serve_options=options)
    print(table(figures["runs"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
