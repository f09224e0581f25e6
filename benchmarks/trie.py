"""Identifier trie: build time, memory and per-step cost for 10k / 100k / 1M identifiers.

Targets: 1M identifiers built in <= 10 s into <= 100 MB. Identifiers are
SSI-shaped strings over a 3,000-word vocabulary; a word-level "tokenizer"
(one token per word and separator) stands in for a real one, and runs before
the clock starts (``tokenize_s``), so that ``build_s`` is the trie's, not a
tokenizer's. The 1-minute load average is recorded with each size: the
machine may be shared.

    python -m benchmarks.trie            # 10k, 100k, 1M
    python -m benchmarks.trie --quick    # 10k, 100k
"""

from __future__ import annotations

import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ssi_plugin.trie import IdentifierTrie

WORDS = [f"w{n}" for n in range(3000)]
SLOTS = ("objects", "actions", "attributes", "scene")


def identifiers(n: int, *, seed: int = 0) -> list[str]:
    """``n`` distinct SSI-shaped identifiers (sorted concepts per slot, ``#k`` on rare repeats)."""
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    out = []
    for _ in range(n):
        segments = [f"objects: {', '.join(sorted(rng.sample(WORDS[:1500], rng.randint(1, 3))))}"]
        segments.append(f"actions: {rng.choice(WORDS[1500:2000])}")
        segments.append(f"attributes: {', '.join(sorted(rng.sample(WORDS[2000:2500], rng.randint(1, 2))))}")
        segments.append(f"scene: {rng.choice(WORDS[2500:])}")
        identifier = " | ".join(segments)
        seen[identifier] = seen.get(identifier, 0) + 1
        out.append(identifier if seen[identifier] == 1 else f"{identifier} | #{seen[identifier]}")
    return out


_VOCAB = {token: n for n, token in enumerate(["[end]", *SLOTS, ":", ",", "|", *WORDS, *(f"#{k}" for k in range(2, 50))])}


def encode(batch: list[str]) -> list[list[int]]:
    return [[_VOCAB[token] for token in identifier.replace(":", " :").replace(",", " ,").split()] for identifier in batch]


def measure(n: int) -> dict[str, float]:
    pairs = [(identifier, f"img-{i}") for i, identifier in enumerate(identifiers(n))]
    started = time.perf_counter()
    tokenized = dict(zip((identifier for identifier, _ in pairs), encode([identifier for identifier, _ in pairs]), strict=True))
    tokenize_s = time.perf_counter() - started
    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    started = time.perf_counter()
    trie = IdentifierTrie.build(pairs, encode=lambda batch, known=tokenized: list(map(known.__getitem__, batch)), end_token_id=0,
                                tokenizer_fingerprint="bench")
    build_s = time.perf_counter() - started
    peak_build_mb = (process.memory_info().rss - before) / 1e6
    del pairs, tokenized
    gc.collect()
    with tempfile.TemporaryDirectory() as folder:
        trie.save(Path(folder))
        disk_mb = sum(f.stat().st_size for f in Path(folder).iterdir()) / 1e6
        started = time.perf_counter()
        IdentifierTrie.load(Path(folder))
        load_s = time.perf_counter() - started
        resident_mb = _loaded_resident_mb(Path(folder))
    rng = random.Random(1)
    sample = [encode([trie.index.identifier_at(rng.randrange(len(trie)))])[0] for _ in range(2000)]
    prefixes = [tokens[: rng.randrange(len(tokens) + 1)] for tokens in sample]
    started = time.perf_counter()
    for prefix in prefixes:
        trie.children(prefix)
    children_us = (time.perf_counter() - started) / len(prefixes) * 1e6
    return {"identifiers": n, "build_s": round(build_s, 2), "tokenize_s": round(tokenize_s, 2), "load_average": os.getloadavg()[0],
            "resident_mb": round(resident_mb, 1), "build_rss_growth_mb": round(peak_build_mb, 1), "disk_mb": round(disk_mb, 1),
            "load_s": round(load_s, 2), "heavy_nodes": trie.manifest.heavy_nodes, "children_us": round(children_us, 1)}


def _loaded_resident_mb(folder: Path) -> float:
    """Resident memory a loaded trie adds to a fresh interpreter (this process's heap is not a clean slate)."""
    code = (
        "import gc, psutil, sys; from pathlib import Path; from ssi_plugin.trie import IdentifierTrie; "
        "p = psutil.Process(); gc.collect(); before = p.memory_info().rss; "
        "trie = IdentifierTrie.load(Path(sys.argv[1])); gc.collect(); print((p.memory_info().rss - before) / 1e6)"
    )
    return float(subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, check=True).stdout)


def run(quick: bool = False) -> dict:
    sizes = (10_000, 100_000) if quick else (10_000, 100_000, 1_000_000)
    figures = {f"{n}": measure(n) for n in sizes}
    largest = figures[str(sizes[-1])]
    return {"sizes": figures, "target_1m": {"build_s_max": 10, "memory_mb_max": 100}, "largest": largest}


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
