"""Generator: quality and latency together, constraint overhead, training throughput, SSI vs numeric ids.

A synthetic corpus (``ssi_plugin.datasets.synthetic``: known contents, paraphrased
captions) gives each image an SSI from its true contents; as in the
evaluation protocol, the first caption trains and the others are the queries
(never seen in training). Recall@k counts a query as answered when its own image is among the
images of the top-k candidates. Scale and paraphrase only: not a quality claim
about real photographs.

    python -m benchmarks.generation            # default model and training: SSI with and without RGS, numeric ids
    python -m benchmarks.generation --quick    # a tiny random model: the pipeline and its overheads in seconds
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.generation import beam_search, constraint
from ssi_plugin.generation.examples import TrainingExample
from ssi_plugin.generation.generator import Generator
from ssi_plugin.generation.training import TrainingConfig, train
from ssi_plugin.identifiers import SSI
from ssi_plugin.trie import token_trie


def corpus(images: int, *, train_captions: int = 2, query_captions: int = 2, seed: int = 0):
    """Training examples (with rationales) and held-out ``(query, image_id)`` pairs."""
    examples, queries, taken = [], [], {}
    for index in range(images):
        record, contents = synthetic_record(seed, index, captions_per_image=train_captions + query_captions)
        ssi = SSI(objects=tuple(o.name for o in contents.objects), actions=tuple(o.action for o in contents.objects),
                  attributes=tuple(o.colour for o in contents.objects), scene=(contents.scene,))
        taken[ssi.id] = taken.get(ssi.id, 0) + 1
        if taken[ssi.id] > 1:
            ssi = ssi.with_disambiguator(taken[ssi.id])
        rationale = f"The caption shows {' and '.join(f'a {o.colour} {o.name}' for o in contents.objects)} in a {contents.scene} scene."
        examples += [TrainingExample(text=c, identifier=ssi.id, rationale=rationale, image_id=record.id)
                     for c in record.captions[:train_captions]]
        queries += [(c, record.id) for c in record.captions[train_captions:]]
    return examples, queries


def recall(generator: Generator, queries, *, k: int = 10) -> dict[str, float]:
    hits = {1: 0, 5: 0, 10: 0}
    for text, image_id in queries:
        ranked = [image for c in generator.generate(text, k=k).candidates for image in c.image_ids]
        for cutoff in hits:
            hits[cutoff] += image_id in ranked[:cutoff]
    return {f"recall@{cutoff}": round(count / len(queries), 3) for cutoff, count in hits.items()}


CONSTRAINT_PARTS = ((constraint, "AllowedColumns.__call__"), (beam_search, "log_softmax_over"), (token_trie, "TokenTrie.completion"))
"""What the trie constraint costs a query: allowed tokens, renormalisation over them, forced completions."""


@contextmanager
def timing(parts, clock: list[float]):
    """Patch each ``(module, "name")`` or ``(module, "Class.method")`` to add its wall time to ``clock[0]``."""
    originals = []
    for module, dotted in parts:
        owner_name, _, name = dotted.rpartition(".")
        owner = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, name)

        def timed(*args, _original=original, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                clock[0] += time.perf_counter() - started

        originals.append((owner, name, original))
        setattr(owner, name, timed)
    try:
        yield
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def latency(generator: Generator, queries, *, beams: int, repeats: int) -> dict[str, float]:
    """p50/p95 of ``generate`` in ms, and the share of it spent inside the trie constraint."""
    generator.generate(queries[0][0], k=beams)  # warm-up
    times: list[float] = []
    inside = [0.0]
    with timing(CONSTRAINT_PARTS, inside):
        for text, _ in queries[:repeats]:
            started = time.perf_counter()
            generator.generate(text, k=beams)
            times.append(time.perf_counter() - started)
    inside = inside[0]
    times.sort()
    return {"p50_ms": round(statistics.median(times) * 1000, 1), "p95_ms": round(times[int(0.95 * (len(times) - 1))] * 1000, 1),
            "constraint_share": round(inside / sum(times), 3)}


def evaluate(folder: Path, queries, *, repeats: int, threads: tuple[int, ...]) -> dict:
    figures: dict = {"quality": recall(Generator.load(folder), queries)}
    for count in threads:
        generator = Generator.load(folder, threads=count)
        figures[f"latency_{count}_threads"] = {f"beams_{b}": latency(generator, queries, beams=b, repeats=repeats) for b in (1, 5, 10)}
        figures[f"latency_{count}_threads"]["load_average"] = round(os.getloadavg()[0], 2)
    return figures


VARIANTS = {"ssi": {}, "ssi-no-rgs": {"rationale_weight": 0.0}, "numeric": {"identifier_kind": "numeric", "rationale_weight": 0.0}}
"""The three generators of the evaluation: SSI with RGS (the trainer's defaults), without it, numeric ids."""


def run(quick: bool = False) -> dict:
    images = 40 if quick else 100
    examples, queries = corpus(images, train_captions=1, query_captions=3)
    figures: dict = {"images": images, "train_examples": len(examples), "queries": len(queries)}
    with tempfile.TemporaryDirectory() as work:
        base = "minilm-encoder-decoder"
        settings: dict = {"checkpoint_every": 10_000}
        if quick:
            from tests.tiny_models import tiny_model

            model, tokenizer = tiny_model([e.text for e in examples] + [e.identifier for e in examples] + ["0 1 2 3 4 5 6 7 8 9"])
            base = str(Path(work) / "tiny")
            model.save_pretrained(base)
            tokenizer.save_pretrained(base)
            settings |= {"epochs": 2}
        figures["base"] = "tiny random seq2seq" if quick else base
        for name, variant in VARIANTS.items():
            config = TrainingConfig(base=base, **settings, **variant)
            load = os.getloadavg()[0]
            report = train(examples, Path(work) / name, config, progress=not quick)  # on one thread, the trainer's default
            figures[name] = {"train_examples_per_s": report.examples_per_second, "train_seconds": report.seconds,
                             "epochs": report.epochs, "final_identifier_loss": report.final_identifier_loss,
                             "train_load_average": round((load + os.getloadavg()[0]) / 2, 2)}
            figures[name] |= evaluate(Path(work) / name, queries, repeats=20 if quick else 40,
                                      threads=(1, 2) if name == "ssi" else (1,))
    figures["target"] = {"p50_ms_at_10_beams_max": 100, "constraint_share_max": 0.10}
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
