"""Overhead of ``ssi-plugin serve`` on pass-through requests, against the local node (target: p50 ≤ 2 ms).

The endpoint runs in its own process (as it does in production, so the client and
the server do not share an interpreter lock). The same requests go to the cluster
directly and through the endpoint, alternately, over kept-alive connections; the
overhead is the median of the paired differences.

    python -m benchmarks.serve [--quick]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect

TARGET_OVERHEAD_P50_MS = 2.0

_REQUESTS = {
    "GET /": ("GET", "/", None),
    "POST /{index}/_search (match)": (
        "POST",
        "/{index}/_search",
        {"query": {"match": {"caption": "dog frisbee"}}, "size": 10},
    ),
}


def _serve(upstream: str, replies: Any, commands: Any) -> None:
    """The endpoint's process: pass-through only; answers "cpu" with its CPU seconds so far."""
    from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
    from ssi_plugin.serving.server import serve_in_thread

    def no_ssi(index: str, body: dict[str, Any], headers: Any) -> dict[str, Any]:
        raise AssertionError("the pass-through benchmark sends no ssi query")

    app = SearchProxy(ProxySettings(upstream=upstream), no_ssi).app
    with serve_in_thread(app) as url:
        replies.put(url)
        while commands.get() == "cpu":
            replies.put(time.process_time())


def _fill(engine: EngineClient, index: str, docs: int) -> None:
    words = [
        "dog",
        "cat",
        "frisbee",
        "park",
        "beach",
        "ball",
        "red",
        "running",
        "man",
        "child",
    ]
    engine.request(
        "PUT",
        f"/{index}",
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
    )
    actions = (
        {
            "_index": index,
            "_id": str(i),
            "_source": {"caption": " ".join(words[(i * k) % len(words)] for k in (1, 3, 7))},
        }
        for i in range(docs)
    )
    failed = [item for item in engine.bulk(actions) if not item.ok]
    assert not failed, failed[:3]
    engine.refresh(index)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _measure(
    direct: httpx.Client,
    proxied: httpx.Client,
    request: tuple[str, str, Any],
    rounds: int,
    proxy_cpu: Callable[[], float],
) -> dict[str, float]:
    method, path, body = request
    timings: dict[str, list[float]] = {"direct": [], "proxy": []}
    warmup = rounds // 10  # warms connections and caches
    cpu_started = 0.0
    for round_number in range(warmup + rounds):
        if round_number == warmup:
            cpu_started = proxy_cpu()
        for name, client in (("direct", direct), ("proxy", proxied)):
            started = time.perf_counter()
            response = client.request(method, path, json=body)
            elapsed = (time.perf_counter() - started) * 1000
            response.raise_for_status()
            if round_number >= warmup:
                timings[name].append(elapsed)
    cpu_ms = (proxy_cpu() - cpu_started) * 1000 / rounds
    paired = [p - d for p, d in zip(timings["proxy"], timings["direct"], strict=True)]
    return {
        "direct_p50_ms": statistics.median(timings["direct"]),
        "direct_p95_ms": _percentile(timings["direct"], 0.95),
        "proxy_p50_ms": statistics.median(timings["proxy"]),
        "proxy_p95_ms": _percentile(timings["proxy"], 0.95),
        "overhead_p50_ms": statistics.median(paired),
        "proxy_cpu_ms_per_request": cpu_ms,
    }


def run(quick: bool = False) -> dict[str, Any]:
    """Measure and print; the figures by request, plus the worst overhead against the target."""
    rounds = 300 if quick else 2000
    engine = connect(EngineSettings())
    index = f"bench-serve-{uuid.uuid4().hex[:8]}"
    context = multiprocessing.get_context("spawn")
    replies, commands = context.Queue(), context.Queue()
    server = context.Process(target=_serve, args=(engine.url, replies, commands), daemon=True)
    figures: dict[str, Any] = {
        "rounds": rounds,
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "load_average_1m": os.getloadavg()[0],
        "requests": {},
    }

    def proxy_cpu() -> float:
        commands.put("cpu")
        return float(replies.get(timeout=30))

    try:
        _fill(engine, index, 1000)
        server.start()
        proxy_url = replies.get(timeout=60)
        with (
            httpx.Client(base_url=engine.url) as direct,
            httpx.Client(base_url=proxy_url) as proxied,
        ):
            for name, (method, path, body) in _REQUESTS.items():
                request = (method, path.format(index=index), body)
                figures["requests"][name] = _measure(direct, proxied, request, rounds, proxy_cpu)
    finally:
        commands.put("stop")
        server.join(timeout=10)
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
        engine.close()
    figures["overhead_p50_ms"] = max(r["overhead_p50_ms"] for r in figures["requests"].values())
    figures["meets_target"] = figures["overhead_p50_ms"] <= TARGET_OVERHEAD_P50_MS
    _print(figures)
    return figures


def _print(figures: dict[str, Any]) -> None:
    table = Table(
        title=f"serve pass-through overhead ({figures['rounds']} rounds, target p50 ≤ {TARGET_OVERHEAD_P50_MS} ms)"
    )
    for column in (
        "request",
        "direct p50",
        "direct p95",
        "proxy p50",
        "proxy p95",
        "overhead p50",
        "proxy CPU",
    ):
        table.add_column(column, justify="left" if column == "request" else "right")
    for name, r in figures["requests"].items():
        table.add_row(
            name,
            *(
                f"{r[k]:.2f} ms"
                for k in (
                    "direct_p50_ms",
                    "direct_p95_ms",
                    "proxy_p50_ms",
                    "proxy_p95_ms",
                    "overhead_p50_ms",
                    "proxy_cpu_ms_per_request",
                )
            ),
        )
    Console().print(table)
    verdict = "meets" if figures["meets_target"] else "MISSES"
    Console().print(f"worst overhead p50 {figures['overhead_p50_ms']:.2f} ms: {verdict} the target")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    run(quick=parser.parse_args().quick)
