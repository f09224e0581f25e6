"""The live trie against corpus size: 10k, 100k and 1M synthetic identifiers in a real index.

For each size the index is filled with SSI fields only (identifiers of the
synthetic corpus's known contents, no annotator), then:

- ``read_s`` / ``build_s`` / ``trie_rss_mib``: a searcher's first read of the
  index by sequence number, the trie build, and the resident memory it adds;
- ``add_1k_s``: 1,000 new identifiers taken into the live trie (a delta beside the base);
- ``generate_p50_ms`` / ``p95``: constrained decoding at 10 beams with the
  default generator architecture as initialised (untrained: flat distributions,
  an upper bound for a trained model), each query ``GENERATE_ROUNDS`` times, once
  every size's trie is built: the sizes take turns query by query (over the
  trie each size saved), so that what else the machine does falls on all alike;
- ``serve_p50_ms`` / ``p95``: ``ssi`` queries through ``ssi-plugin serve``'s app;
- ``freshness_s``: from the refresh after a write by another client to ``serve``
  reporting the new image (``/_ssi/health``), and ``update_worst_ms``, the slowest
  query while 1,000 new images are taken in (queries keep running; ``update_errors``);
- ``disk_bytes_per_image``: the index's store size over its images (SSI fields only).

At the largest size two ``ssi-plugin serve`` processes are started on the same
index and generator folder: ``second_serve_rss_mib`` and ``second_serve_uss_mib``
(its private memory: what it does not share with the first through the
memory-mapped trie and the page cache).

A PNG of latency and memory against size is written beside the report
(``runs/benchmarks/scale.png``; ``--png`` elsewhere).

    python -m benchmarks.scale [--quick] [--png PATH]     # quick: 10k only (CI runs it)
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.trie import loaded_resident_mb
from ssi_plugin.config import EngineSettings
from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.layout import index_body, install_layout
from ssi_plugin.identifiers import SSI, CollisionResolver, SSIRecord
from ssi_plugin.indexing.documents import DOC_ID_FIELD

SEED = 7
QUERIES = 60
GENERATE_ROUNDS = 3
"""Each query is decoded this many times per size: the ratio of two sizes' medians over 60 timings moved by several
hundredths from run to run. Timed size after size (each right after its index was filled), the ratio of 1M to 10k
read 1.25, 0.87 and 1.54 in three runs of the same code: the sizes now take turns query by query."""
TARGETS = {"add_1k_s_max": 1.0, "freshness_s_max_at_100k": 5.0, "serve_p50_ms_max_at_1m": 150.0,
           "generate_p50_at_1m_over_10k_max": 1.2, "build_s_max_at_1m": 10.0, "trie_rss_mib_max_at_1m": 100.0}
PNG = Path("runs/benchmarks/scale.png")


def _identifier(n: int, resolver: CollisionResolver) -> tuple[str, SSI]:
    record, contents = synthetic_record(SEED, n)
    ssi = SSI(objects=tuple(o.name for o in contents.objects), actions=tuple(o.action for o in contents.objects),
              attributes=tuple(o.colour for o in contents.objects), scene=(contents.scene,))
    return record.id, resolver.assign(record.id, ssi).ssi


def _documents(index: str, start: int, stop: int, resolver: CollisionResolver, *,
               captions: bool = False) -> Iterator[dict[str, Any]]:
    """SSI fields only, or with ``captions`` the image's first caption beside them (``caption``: a text field)."""
    for n in range(start, stop):
        image_id, ssi = _identifier(n, resolver)
        fields = SSIRecord(id=image_id, ssi=ssi, rationale="From the known contents.", annotator="synthetic",
                           version="synthetic/1").index_fields()
        source = {"ssi": fields, DOC_ID_FIELD: image_id}  # as ssi-plugin's writers write it
        if captions:
            source["caption"] = synthetic_record(SEED, n)[0].captions[0]
        yield {"_index": index, "_id": image_id, "_source": source}


def _fill(engine: EngineClient, index: str, start: int, stop: int, resolver: CollisionResolver, *, refresh: bool = True,
          captions: bool = False) -> None:
    documents = _documents(index, start, stop, resolver, captions=captions)
    failed = sum(not r.ok for r in engine.bulk(documents, chunk_size=5000))
    assert failed == 0, f"{failed} benchmark documents were refused"
    if refresh:
        engine.refresh(index)


def _percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1) if len(values) > 1 else round(values[0], 1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _generator_folder(folder: Path) -> Path:
    """The default generator architecture, untrained, saved as a generator folder (its own trie: one identifier)."""
    from ssi_plugin.generation.generator import build_trie, save_folder
    from ssi_plugin.generation.training import TrainingConfig, load_for_training

    model, tokenizer, spec = load_for_training(TrainingConfig())
    save_folder(folder, model=model, tokenizer=tokenizer, spec=spec, trie=build_trie(tokenizer, [("objects: dog", "seed")]))
    return folder


def measure(engine: EngineClient, size: int, folder: Path, cache_dir: Path, *, replicas: bool) -> dict[str, Any]:
    from transformers import AutoTokenizer

    from ssi_plugin.generation.generator import build_trie
    from ssi_plugin.generation.spec import GeneratorSpec
    from ssi_plugin.indexing.trie import IndexTrie

    index = f"bench-scale-{size}-{uuid.uuid4().hex[:6]}"
    figures: dict[str, Any] = {"identifiers": size, "load_average_1m": round(os.getloadavg()[0], 2)}
    install_layout(engine)
    engine.request("PUT", f"/{index}", body=index_body())
    resolver = CollisionResolver()
    try:
        started = time.perf_counter()
        _fill(engine, index, 0, size, resolver)
        figures["fill_s"] = round(time.perf_counter() - started, 1)
        engine.request("POST", f"/{index}/_forcemerge", params={"max_num_segments": 1})
        store = engine.request("GET", f"/{index}/_stats/store")["indices"][index]["primaries"]["store"]["size_in_bytes"]
        figures["disk_bytes_per_image"] = round(store / size, 1)

        tokenizer = AutoTokenizer.from_pretrained(folder)
        spec = GeneratorSpec.load(folder)
        timings: dict[str, float] = {}

        def timed_build(pairs: Any) -> Any:
            started = time.perf_counter()
            trie = build_trie(tokenizer, pairs)
            timings.setdefault("build_s", time.perf_counter() - started)
            return trie

        started = time.perf_counter()
        trie = IndexTrie(engine, index, build=timed_build, tokenizer_fingerprint=spec.tokenizer_fingerprint, cache_dir=cache_dir)
        total = time.perf_counter() - started
        figures["build_s"] = round(timings["build_s"], 2)
        figures["read_s"] = round(total - timings["build_s"], 2)
        saved = next((cache_dir / "tries" / index).glob("*/*/sync.json")).parent
        figures["trie_rss_mib"] = round(loaded_resident_mb(saved) * 1e6 / 2**20, 1)
        shutil.copytree(saved, _generate_trie(cache_dir))

        new = {image_id: ssi.id for image_id, ssi in (_identifier(n, resolver) for n in range(size, size + 1000))}
        started = time.perf_counter()
        trie.live.apply(new)
        figures["add_1k_s"] = round(time.perf_counter() - started, 3)
        trie.live.wait()

        del trie
        gc.collect()

        texts = _texts()
        figures.update(_through_serve(engine, index, folder, cache_dir, texts, size, resolver,
                                      measure_freshness=size <= 100_000))
        if replicas:
            figures.update(_replica_memory(engine, index, folder, cache_dir, texts[0]))
        return figures
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})


def _generate_trie(cache_dir: Path) -> Path:
    """Where ``measure`` keeps a copy of the trie it saved, for ``generate_in_turns``."""
    return cache_dir / "generate-trie"


def _texts(count: int = QUERIES) -> list[str]:
    """The benchmarks' query captions: the last caption of each of the first ``count`` synthetic images of seed ``SEED + 1``."""
    return [synthetic_record(SEED + 1, n)[0].captions[-1] for n in range(count)]


def generate_in_turns(folder: Path, tries: dict[str, Path]) -> dict[str, dict[str, float]]:
    """``generate_p50_ms`` / ``generate_p95_ms`` of each size over its saved trie, the sizes taking turns query by query."""
    from ssi_plugin.generation.generator import Generator
    from ssi_plugin.trie import IdentifierTrie, TrieView

    generators = {size: Generator.load(folder, trie=TrieView(IdentifierTrie.load(path, mmap=True))) for size, path in tries.items()}
    texts = _texts()
    for generator in generators.values():
        generator.generate(texts[0], k=10)
    timings: dict[str, list[float]] = {size: [] for size in generators}
    for text in texts * GENERATE_ROUNDS:
        for size, generator in generators.items():
            started = time.perf_counter()
            generator.generate(text, k=10)
            timings[size].append((time.perf_counter() - started) * 1000)
    return {size: {"generate_p50_ms": _percentile(ms, 50), "generate_p95_ms": _percentile(ms, 95)} for size, ms in timings.items()}


def _through_serve(engine: EngineClient, index: str, folder: Path, cache_dir: Path, texts: list[str], size: int,
                   resolver: CollisionResolver, *, measure_freshness: bool) -> dict[str, Any]:
    from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
    from ssi_plugin.serving.searchers import IndexSearchers
    from ssi_plugin.serving.server import serve_in_thread

    figures: dict[str, Any] = {}
    searchers = IndexSearchers(engine, cache_dir=cache_dir, index=index, model_dir=folder, poll=0.25)
    searchers.preload()
    body = {"size": 10, "_source": False}
    try:
        with (serve_in_thread(SearchProxy(ProxySettings(upstream=engine.url), searchers, health=searchers.health).app) as url,
              httpx.Client(base_url=url, timeout=60) as client):
            client.post(f"/{index}/_search", json={**body, "query": {"ssi": {"query": texts[0]}}}).raise_for_status()
            served = []
            for text in texts:
                started = time.perf_counter()
                client.post(f"/{index}/_search", json={**body, "query": {"ssi": {"query": text}}}).raise_for_status()
                served.append((time.perf_counter() - started) * 1000)
            figures["serve_p50_ms"], figures["serve_p95_ms"] = _percentile(served, 50), _percentile(served, 95)
            if not measure_freshness:
                return figures

            def images() -> int:
                return int(client.get("/_ssi/health").json()["indices"][index]["images"])

            held = images()
            _fill(engine, index, size + 2000, size + 2001, resolver)
            refreshed = time.perf_counter()
            while images() != held + 1:
                if time.perf_counter() - refreshed > 60:
                    raise AssertionError("serve did not take the new image in within 60 s")
                time.sleep(0.02)
            figures["freshness_s"] = round(time.perf_counter() - refreshed, 2)

            latencies: list[float] = []
            errors = 0
            stop = threading.Event()

            def keep_asking() -> None:
                nonlocal errors
                with httpx.Client(base_url=url, timeout=60) as asker:
                    n = 0
                    while not stop.is_set():
                        started = time.perf_counter()
                        answer = asker.post(f"/{index}/_search", json={**body, "query": {"ssi": {"query": texts[n % len(texts)]}}})
                        latencies.append((time.perf_counter() - started) * 1000)
                        errors += answer.status_code != 200
                        n += 1

            asker = threading.Thread(target=keep_asking)
            asker.start()
            time.sleep(1.0)
            _fill(engine, index, size + 3000, size + 4000, resolver)
            while images() != held + 1001:
                time.sleep(0.05)
            time.sleep(1.0)
            stop.set()
            asker.join()
            figures.update({"update_queries": len(latencies), "update_worst_ms": round(max(latencies), 1), "update_errors": errors})
    finally:
        searchers.close()
    return figures


@contextmanager
def serve_process(engine_url: str, index: str, folder: Path, cache_dir: Path, warm_query: str, *,
                  options: Sequence[str] = (), startup_s: float = 600,
                  log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """``ssi-plugin serve --index index --model folder`` in a process of its own, yielded (base URL, process) once
    it has answered ``warm_query``; terminated on exit. Its output goes to ``log`` when given."""
    port = _free_port()
    command = [sys.executable, "-m", "ssi_plugin", "--url", engine_url, "serve", "--index", index, "--model", str(folder),
               "--port", str(port), *options]
    with log.open("wb") if log else open(os.devnull, "wb") as output:
        process = subprocess.Popen(command, env={**os.environ, "SSI_CACHE_DIR": str(cache_dir)}, stdout=output,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                httpx.post(f"{url}/{index}/_search", json={"query": {"ssi": {"query": warm_query}}}, timeout=60).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise AssertionError("a serve process did not start") from None
                time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        process.wait(30)


def _replica_memory(engine: EngineClient, index: str, folder: Path, cache_dir: Path, text: str) -> dict[str, Any]:
    """Two serve processes on one index and folder: the second one's resident and private memory."""
    with (serve_process(engine.url, index, folder, cache_dir, text),
          serve_process(engine.url, index, folder, cache_dir, text) as (_, second)):
        memory = psutil.Process(second.pid).memory_full_info()
    return {"second_serve_rss_mib": round(memory.rss / 2**20, 1), "second_serve_uss_mib": round(memory.uss / 2**20, 1)}


def plot(sizes: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [int(n) for n in sizes]
    figure, (latency, memory) = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for key, label in (("generate_p50_ms", "generate p50"), ("generate_p95_ms", "generate p95"),
                       ("serve_p50_ms", "ssi query p50 (serve)"), ("serve_p95_ms", "ssi query p95 (serve)")):
        latency.plot(counts, [sizes[str(n)][key] for n in counts], marker="o", label=label)
    latency.axhline(150, color="grey", linestyle=":", label="150 ms target")
    latency.set_xscale("log")
    latency.set_xlabel("identifiers")
    latency.set_ylabel("ms")
    latency.legend(fontsize=8)
    latency.set_title("latency at 10 beams", fontsize=9)
    memory.plot(counts, [sizes[str(n)]["trie_rss_mib"] for n in counts], marker="o", label="trie resident (MiB)")
    memory.plot(counts, [sizes[str(n)]["build_s"] * 10 for n in counts], marker="s", label="trie build (s x 10)")
    memory.set_xscale("log")
    memory.set_xlabel("identifiers")
    memory.legend(fontsize=8)
    memory.set_title("trie memory and build time", fontsize=9)
    figure.suptitle("ssi-plugin live trie against corpus size (2-core CPU)", fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)


def run(quick: bool = False, png: Path = PNG) -> dict[str, Any]:
    sizes = (10_000,) if quick else (10_000, 100_000, 1_000_000)
    engine = connect(EngineSettings())
    results: dict[str, dict[str, Any]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="ssi-scale-") as tmp:
            folder = _generator_folder(Path(tmp) / "generator")
            caches = {str(size): Path(tmp) / f"cache-{size}" for size in sizes}
            for size in sizes:
                results[str(size)] = measure(engine, size, folder, caches[str(size)], replicas=size == sizes[-1])
                print(json.dumps({str(size): results[str(size)]}), flush=True)
            timed = generate_in_turns(folder, {size: _generate_trie(cache) for size, cache in caches.items()})
            for size, figures in timed.items():
                results[size].update(figures)
            print(json.dumps(timed), flush=True)
    finally:
        engine.close()
    plot(results, png)
    figures: dict[str, Any] = {"engine": f"{engine.kind} {engine.info.version}", "sizes": results, "targets": TARGETS,
                               "png": str(png)}
    if not quick:
        small, large, middle = results["10000"], results["1000000"], results["100000"]
        figures["generate_p50_1m_over_10k"] = round(large["generate_p50_ms"] / small["generate_p50_ms"], 2)
        figures["meets"] = {
            "add_1k": large["add_1k_s"] <= TARGETS["add_1k_s_max"],
            "freshness_100k": middle["freshness_s"] <= TARGETS["freshness_s_max_at_100k"] and middle["update_errors"] == 0,
            "serve_p50_1m": large["serve_p50_ms"] <= TARGETS["serve_p50_ms_max_at_1m"],
            "generate_1m_vs_10k": figures["generate_p50_1m_over_10k"] <= TARGETS["generate_p50_at_1m_over_10k_max"],
            "build_1m": large["build_s"] <= TARGETS["build_s_max_at_1m"],
            "memory_1m": large["trie_rss_mib"] <= TARGETS["trie_rss_mib_max_at_1m"],
        }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k identifiers only")
    parser.add_argument("--png", type=Path, default=PNG, help="where the plot goes")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.quick, arguments.png), indent=2))
