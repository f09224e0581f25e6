"""Identifier trie: build time, memory and per-step cost for 10k / 100k / 1M identifiers.

Targets: 1M identifiers built in <= 10 s into <= 100 MB. Identifiers are
SSI-shaped strings over a 3,000-word vocabulary. ``build_s`` is the trie's own
time: a word-level "tokenizer" (one token per word and separator) runs before
the clock starts (``tokenize_s``) and hands over its ids as one ``TokenBatch``.
``minilm_build_s`` is what a user waits for: ``build_trie`` with the real
all-MiniLM-L6-v2 tokenizer (identifiers over 3,000 words of its vocabulary),
tokenization included. CPU seconds are recorded beside wall seconds, and the
1-minute load average with each size: the machine may be shared.

    python -m benchmarks.trie            # 10k, 100k, 1M
    python -m benchmarks.trie --quick    # 10k, 100k
"""

from __future__ import annotations

import gc
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from ssi_plugin.trie import IdentifierTrie, TokenBatch

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
    listed = identifiers(n)
    pairs = [(identifier, f"img-{i}") for i, identifier in enumerate(listed)]
    started = time.perf_counter()
    tokenized = TokenBatch.of(encode(listed))
    tokenize_s = time.perf_counter() - started

    def handover(batch: list[str]) -> TokenBatch:
        assert batch == listed, "identifiers are distinct: the trie tokenizes them in the order given"
        return tokenized

    gc.collect()
    process = psutil.Process()
    before = process.memory_info().rss
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    trie = IdentifierTrie.build(pairs, encode=handover, end_token_id=0, tokenizer_fingerprint="bench")
    build_s, build_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    peak_build_mb = (process.memory_info().rss - before) / 1e6
    del pairs
    gc.collect()
    with tempfile.TemporaryDirectory() as folder:
        trie.save(Path(folder))
        disk_mb = sum(f.stat().st_size for f in Path(folder).iterdir()) / 1e6
        started = time.perf_counter()
        IdentifierTrie.load(Path(folder))
        load_s = time.perf_counter() - started
        resident_mb = loaded_resident_mb(Path(folder))
    rng = random.Random(1)
    sample = [encode([trie.index.identifier_at(rng.randrange(len(trie)))])[0] for _ in range(2000)]
    prefixes = [tokens[: rng.randrange(len(tokens) + 1)] for tokens in sample]
    started = time.perf_counter()
    for prefix in prefixes:
        trie.children(prefix)
    children_us = (time.perf_counter() - started) / len(prefixes) * 1e6
    heavy_nodes = trie.manifest.heavy_nodes
    del trie
    gc.collect()
    return {"identifiers": n, "build_s": round(build_s, 2), "build_cpu_s": round(build_cpu_s, 2), "tokenize_s": round(tokenize_s, 2),
            "load_average": load, "resident_mb": round(resident_mb, 1), "build_rss_growth_mb": round(peak_build_mb, 1),
            "disk_mb": round(disk_mb, 1), "load_s": round(load_s, 2), "heavy_nodes": heavy_nodes,
            "children_us": round(children_us, 1), **_minilm_build(listed)}


def _minilm_build(listed: list[str]) -> dict[str, float]:
    """``build_trie`` with the real MiniLM tokenizer, tokenization included, on the same identifiers in real words."""
    from transformers import AutoTokenizer

    from ssi_plugin.generation.generator import build_trie
    from ssi_plugin.generation.models import minilm_path

    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    vocabulary = sorted(word for word in tokenizer.get_vocab() if word.isascii() and word.isalpha() and len(word) >= 4)
    words = dict(zip(WORDS, random.Random(2).sample(vocabulary, len(WORDS)), strict=True))
    word = re.compile(r"\bw\d+\b")
    pairs = [(word.sub(lambda match: words[match.group(0)], identifier), f"img-{i}") for i, identifier in enumerate(listed)]
    gc.collect()
    load = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    build_trie(tokenizer, pairs)
    return {"minilm_build_s": round(time.perf_counter() - started, 2), "minilm_build_cpu_s": round(time.process_time() - cpu, 2),
            "minilm_load_average": load}


def loaded_resident_mb(folder: Path) -> float:
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
