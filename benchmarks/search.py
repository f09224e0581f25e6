"""Search latency end to end through ``ssi-plugin serve`` on a large synthetic index
(targets on 2 cores: p50 ≤ 150 ms, of which the engine's share ≤ 20 ms).

The index is filled straight from the synthetic corpus's known contents (an SSI
per image, no annotator: annotation speed is ``benchmarks.ingest``'s business),
the default generator architecture gets a trie of all those identifiers, and
queries (held-out paraphrased captions) go through the search endpoint with the
standard ``_search`` API. The generator is used as initialised from its
pretrained parts: untrained, its distributions are flat, so beams part late and
few finish early, which makes these figures an upper bound for a trained model.

    python -m benchmarks.search [--quick]     # 100,000 images (quick: 5,000)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx

from ssi_plugin.config import EngineSettings
from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.layout import index_body, install_layout
from ssi_plugin.identifiers import SSI, CollisionResolver, SSIRecord

TARGET_P50_MS = 150.0
TARGET_ENGINE_P50_MS = 20.0
SEED = 5


def _documents(index: str, images: int, pairs: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """Documents with identifiers from the known contents; (identifier, id) of each is appended to ``pairs``."""
    resolver = CollisionResolver()
    for n in range(images):
        record, contents = synthetic_record(SEED, n)
        ssi = SSI(objects=tuple(o.name for o in contents.objects), actions=tuple(o.action for o in contents.objects),
                  attributes=tuple(o.colour for o in contents.objects), scene=(contents.scene,))
        assigned = resolver.assign(record.id, ssi).ssi
        fields = SSIRecord(id=record.id, ssi=assigned, rationale="From the known contents.", annotator="synthetic",
                           version="synthetic/1").index_fields()
        pairs.append((assigned.id, record.id))
        yield {"_index": index, "_id": record.id, "_source": {"caption": record.captions[0], "ssi": fields}}


def _fill(engine: EngineClient, index: str, images: int) -> list[tuple[str, str]]:
    install_layout(engine)
    engine.request("PUT", f"/{index}", body=index_body())
    pairs: list[tuple[str, str]] = []
    failed = sum(not r.ok for r in engine.bulk(_documents(index, images, pairs), chunk_size=2000))
    assert failed == 0, f"{failed} benchmark documents were refused"
    engine.refresh(index)
    return pairs


def run(quick: bool = False) -> dict[str, Any]:
    from ssi_plugin.generation.generator import Generator, build_trie
    from ssi_plugin.generation.training import TrainingConfig, load_for_training
    from ssi_plugin.search import SSISearcher
    from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
    from ssi_plugin.serving.server import serve_in_thread

    images, queries = (5_000, 40) if quick else (100_000, 200)
    engine = connect(EngineSettings())
    index = f"bench-search-{uuid.uuid4().hex[:8]}"
    figures: dict[str, Any] = {"images": images, "queries": queries, "engine": f"{engine.kind} {engine.info.version}",
                               "load_average_1m": round(os.getloadavg()[0], 2)}
    try:
        started = time.perf_counter()
        pairs = _fill(engine, index, images)
        figures["fill_seconds"] = round(time.perf_counter() - started, 1)
        model, tokenizer, spec = load_for_training(TrainingConfig())
        started = time.perf_counter()
        generator = Generator(model.eval(), tokenizer, spec, build_trie(tokenizer, pairs))
        figures["trie_build_seconds"] = round(time.perf_counter() - started, 1)
        searcher = SSISearcher(engine, generator, index=index)
        texts = [synthetic_record(SEED, n)[0].captions[-1] for n in range(queries)]
        searcher.search(texts[0])  # warm-up

        engine_ms, direct_ms = [], []
        for text in texts:
            result = searcher.search(text)
            engine_ms.append(result.engine_ms)
            direct_ms.append(result.took_ms)
        served_ms = []
        with (
            serve_in_thread(SearchProxy(ProxySettings(upstream=engine.url), searcher.search_request).app) as url,
            httpx.Client(base_url=url, timeout=60) as client,
        ):
            for text in texts:
                started = time.perf_counter()
                answer = client.post(f"/{index}/_search", json={"query": {"ssi": {"query": text}}, "size": 10})
                served_ms.append((time.perf_counter() - started) * 1000)
                answer.raise_for_status()
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
        engine.close()
    figures.update({
        "serve_p50_ms": _percentile(served_ms, 50), "serve_p95_ms": _percentile(served_ms, 95),
        "searcher_p50_ms": _percentile(direct_ms, 50), "engine_p50_ms": _percentile(engine_ms, 50),
        "engine_p95_ms": _percentile(engine_ms, 95),
        "target_p50_ms": TARGET_P50_MS, "target_engine_p50_ms": TARGET_ENGINE_P50_MS,
    })
    figures["meets_target"] = figures["serve_p50_ms"] <= TARGET_P50_MS and figures["engine_p50_ms"] <= TARGET_ENGINE_P50_MS
    for name, value in figures.items():
        print(f"{name:>20}: {value}")
    return figures


def _percentile(values: list[float], q: int) -> float:
    return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 images and 40 queries")
    run(parser.parse_args().quick)
