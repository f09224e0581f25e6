"""The generator in int8 against float32: speed alone and under concurrency, agreement, answers batched as alone.

    python -m benchmarks.precision                       # the default architecture, untrained, over 10k identifiers
    python -m benchmarks.precision --model FOLDER        # a trained generator folder and its own trie (e.g. the demo's)
    python -m benchmarks.precision --quick               # 1k identifiers, 20 captions, 2 s under concurrency

For each precision (``ssi_plugin.generation.precision``), with one torch thread as in ``serve``, over the load
benchmark's 60 synthetic captions:
- ``load_s``: ``Generator.load`` (int8 quantizes the linear layers as it loads);
- ``alone_p50_ms`` / ``alone_p95_ms``: one query at a time, every caption three times;
- ``concurrent_queries_per_s`` / ``concurrent_cpu_ms_per_query``: 16 threads calling ``generate`` for 15 s (their
  queries decode in shared batches);
- ``batched_as_alone``: the share of captions whose identifiers and scores (within 1e-4) under concurrency are the
  ones they get alone: 1.0 is the generator's promise, in both precisions.
And ``int8_same_best``: the share of captions whose best identifier in int8 is float32's (Recall is what matters: the
README's "Generation in int8" gives it on five sets).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.scale import QUERIES, _generator_folder, _identifier, _percentile, _texts
from ssi_plugin.config import Precision
from ssi_plugin.generation.generator import GenerationResult, Generator, build_trie
from ssi_plugin.identifiers import CollisionResolver
from ssi_plugin.threads import one_thread_per_query
from ssi_plugin.trie import IdentifierTrie

PRECISIONS: tuple[Precision, ...] = ("float32", "int8")
CLIENTS = 16


def _same(batched: GenerationResult, alone: GenerationResult) -> bool:
    return ([c.identifier for c in batched.candidates] == [c.identifier for c in alone.candidates]
            and all(abs(b.score - a.score) <= 1e-4 for b, a in zip(batched.candidates, alone.candidates, strict=True)))


def _same_best(batched: GenerationResult, alone: GenerationResult) -> bool:
    return [c.identifier for c in batched.candidates[:1]] == [c.identifier for c in alone.candidates[:1]]


def _concurrently(generator: Generator, texts: list[str], seconds: float) -> tuple[dict[str, Any], dict[str, GenerationResult]]:
    """``CLIENTS`` threads asking ``texts`` in turn for ``seconds``: queries/s, CPU per query, each text's first answer."""
    stop = threading.Event()
    answered: list[int] = []
    first: dict[str, GenerationResult] = {}

    def client(start: int) -> None:
        n = start
        while not stop.is_set():
            text = texts[n % len(texts)]
            first.setdefault(text, generator.generate(text, k=10))
            answered.append(1)
            n += CLIENTS

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    cpu, started = time.process_time(), time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"concurrent_queries_per_s": round(len(answered) / wall, 1),
            "concurrent_cpu_ms_per_query": round(cpu * 1000 / len(answered), 2)}, first


def measure(folder: Path, trie: IdentifierTrie | None, texts: list[str], *, seconds: float) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    best: dict[str, list[str]] = {}
    for precision in PRECISIONS:
        started = time.perf_counter()
        generator = Generator.load(folder, trie=trie, precision=precision)
        load_s = time.perf_counter() - started
        alone = {text: generator.generate(text, k=10) for text in texts}  # the first round also warms up
        timings = []
        for _ in range(3):
            for text in texts:
                started = time.perf_counter()
                generator.generate(text, k=10)
                timings.append((time.perf_counter() - started) * 1000)
        concurrent, batched = _concurrently(generator, texts, seconds)
        figures[precision] = {"load_s": round(load_s, 2), "alone_p50_ms": _percentile(timings, 50),
                              "alone_p95_ms": _percentile(timings, 95), **concurrent,
                              "batched_as_alone": round(sum(_same(result, alone[text]) for text, result in batched.items())
                                                        / len(batched), 3),
                              "batched_same_best": round(sum(_same_best(result, alone[text]) for text, result in batched.items())
                                                         / len(batched), 3)}
        best[precision] = [alone[text].candidates[0].identifier if alone[text].candidates else "" for text in texts]
    figures["int8_same_best"] = round(sum(a == b for a, b in zip(*best.values(), strict=True)) / len(texts), 3)
    return figures


def run(quick: bool = False, model: Path | None = None) -> dict[str, Any]:
    from transformers import AutoTokenizer

    one_thread_per_query()
    texts = _texts(20 if quick else QUERIES)
    figures: dict[str, Any] = {"load_average_1m": round(os.getloadavg()[0], 2), "queries": len(texts)}
    if model is not None:
        figures["model"] = str(model)
        return figures | measure(model, None, texts, seconds=2 if quick else 15)
    size = 1000 if quick else 10_000
    figures["model"] = f"default architecture, untrained, {size:,} synthetic identifiers"
    with tempfile.TemporaryDirectory() as scratch:
        folder = _generator_folder(Path(scratch) / "generator")
        resolver = CollisionResolver()
        pairs = [(ssi.id, image_id) for image_id, ssi in (_identifier(n, resolver) for n in range(size))]
        trie = build_trie(AutoTokenizer.from_pretrained(folder), pairs)
        return figures | measure(folder, trie, texts, seconds=2 if quick else 15)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k identifiers, 20 captions, 2 s under concurrency")
    parser.add_argument("--model", type=Path, help="a trained generator folder (its own trie)")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.quick, arguments.model), indent=2))
