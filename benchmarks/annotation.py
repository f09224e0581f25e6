"""Annotation figures: caption-annotator throughput with and without image tags, collisions, slot order.

    python -m benchmarks.annotation            # 4,000 synthetic records (800 with image tags)
    python -m benchmarks.annotation --quick    # 600 / 120: a smoke test, not figures to quote

Runs on 2 cores (the target machine): the process is pinned to two CPUs when
more are present, and torch uses two threads. Model loading is timed apart
from throughput. Wall-clock rates are what a user gets on that machine when
nothing else runs; on a shared machine they undercount, so each rate also
comes per second of the process's CPU time (``*_per_cpu_s``): for the
single-threaded caption path that is the rate of one free core, a floor for
two; torch's second thread makes the image-tag figure a floor too (waiting
threads spin and burn CPU time). The 1-minute load average is recorded. The corpus is the synthetic one (drawn 128 px JPEG scenes,
five template captions each) plus the demo set of 22 real photographs.

Also measured, to justify the canonical form's sorted concept order: for each
synthetic image the concepts of every caption are compared with the first
caption's (the one that is annotated at ingest; the others are the queries a
generator must map to its identifier). Sorted order makes the identifier a
function of the concept set; salience order also depends on the wording.
``identifier_agreement_*`` = share of (first, other) caption pairs with equal
identifiers under each order; ``salience_order_differs_share`` = among slots
with the same two or more concepts in both captions, how often salience still
orders them differently (sorted order: never).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ssi_plugin.annotation.base import Annotation
from ssi_plugin.annotation.caption import CaptionAnnotator, extract_concepts
from ssi_plugin.annotation.captions import checked_caption
from ssi_plugin.datasets import ImageRecord, read_dataset
from ssi_plugin.datasets.synthetic import generate_synthetic_corpus
from ssi_plugin.demo_data import materialize_demo_dataset
from ssi_plugin.errors import AnnotationError
from ssi_plugin.identifiers import SLOTS, CollisionResolver

CORES = 2


def _pin_to_two_cores() -> int:
    import torch

    available = sorted(os.sched_getaffinity(0))
    if len(available) > CORES:
        os.sched_setaffinity(0, set(available[:CORES]))
    torch.set_num_threads(min(CORES, len(available)))
    return min(CORES, len(available))


def _throughput(annotator: CaptionAnnotator, records: list[ImageRecord]) -> tuple[float, float, int]:
    """(images per wall-clock second, images per second of this process's CPU time, annotated)."""
    list(annotator.annotate(records[: min(64, len(records))]))  # warm-up: lazy loads, caches
    started, cpu = time.perf_counter(), time.process_time()
    results = list(annotator.annotate(records))
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    return len(records) / seconds, len(records) / cpu_seconds, sum(isinstance(r, Annotation) for r in results)


def _collisions(annotations: list[Annotation]) -> dict[str, float]:
    resolver = CollisionResolver()
    for annotation in annotations:
        resolver.assign(annotation.id, annotation.ssi, reserve=annotation.reserve)
    report = resolver.report()
    return {
        "images": report.images,
        "collision_rate": round(report.collision_rate, 4),
        "resolved_by_concept": report.resolved_by_concept,
        "resolved_by_suffix": report.resolved_by_suffix,
        "largest_group": report.largest_group,
    }


def _slot_lists(annotator: CaptionAnnotator, caption: str) -> dict[str, list[str]] | None:
    """The concepts the caption annotator keeps per slot, in salience order (None: the caption fails)."""
    try:
        text = checked_caption(caption)
    except AnnotationError:
        return None
    found = extract_concepts(annotator.nlp(text or ""), nouns=annotator.nouns)
    return {slot: [concept for concept, _ in found[slot][: annotator.caps[slot]]] for slot in SLOTS}


def _order_study(annotator: CaptionAnnotator, records: list[ImageRecord]) -> dict[str, float]:
    """How often salience order splits what sorted order keeps together, across captions of one image."""
    pairs = same_set = same_salience = slot_pairs = slot_split = 0
    jaccard: list[float] = []
    for record in records:
        lists = [_slot_lists(annotator, caption) for caption in record.captions]
        first = lists[0]
        if first is None:
            continue
        for other in lists[1:]:
            if other is None:
                continue
            pairs += 1
            sets_equal = all(set(first[s]) == set(other[s]) for s in SLOTS)
            same_set += sets_equal
            same_salience += sets_equal and all(first[s] == other[s] for s in SLOTS)
            a = {f"{s}:{c}" for s in SLOTS for c in first[s]}
            b = {f"{s}:{c}" for s in SLOTS for c in other[s]}
            jaccard.append(len(a & b) / len(a | b) if a | b else 1.0)
            for slot in SLOTS:
                if len(first[slot]) > 1 and set(first[slot]) == set(other[slot]):
                    slot_pairs += 1
                    slot_split += first[slot] != other[slot]
    return {
        "caption_pairs": pairs,
        "identifier_agreement_sorted": round(same_set / pairs, 4),
        "identifier_agreement_salience": round(same_salience / pairs, 4),
        "same_multi_concept_slot_pairs": slot_pairs,
        "salience_order_differs_share": round(slot_split / slot_pairs, 4) if slot_pairs else 0.0,
        "concept_jaccard_mean": round(sum(jaccard) / len(jaccard), 4),
    }


def run(quick: bool = False) -> dict[str, Any]:
    cores = _pin_to_two_cores()
    n_caption, n_tags, n_order = (600, 120, 100) if quick else (4000, 800, 500)
    figures: dict[str, Any] = {"cores": cores}
    with tempfile.TemporaryDirectory(prefix="ssi-annotation-bench-") as tmp:
        synthetic = list(read_dataset(generate_synthetic_corpus(Path(tmp) / "synthetic", n_caption, seed=7, progress=False)))
        demo = list(read_dataset(materialize_demo_dataset(Path(tmp) / "demo")))

        started = time.perf_counter()
        caption = CaptionAnnotator()
        _ = caption.version  # loads spaCy
        figures["caption_load_s"] = round(time.perf_counter() - started, 2)
        rate, cpu_rate, ok = _throughput(caption, synthetic)
        figures["caption_images_per_s"] = round(rate, 1)
        figures["caption_images_per_cpu_s"] = round(cpu_rate, 1)
        figures["caption_annotated_share"] = round(ok / len(synthetic), 4)

        started = time.perf_counter()
        tagging = CaptionAnnotator(image_tags=True)
        _ = tagging.version
        list(tagging.annotate(synthetic[:1]))
        figures["image_tags_load_s"] = round(time.perf_counter() - started, 2)
        rate, cpu_rate, _ = _throughput(tagging, synthetic[:n_tags])
        figures["image_tags_images_per_s"] = round(rate, 1)
        figures["image_tags_images_per_cpu_s"] = round(cpu_rate, 1)
        rate, cpu_rate, _ = _throughput(tagging, demo)
        figures["image_tags_demo_photos_per_s"] = round(rate, 1)
        figures["image_tags_demo_photos_per_cpu_s"] = round(cpu_rate, 1)

        annotated = [r for r in caption.annotate(synthetic) if isinstance(r, Annotation)]
        figures["collisions_synthetic"] = _collisions(annotated)
        demo_results = [r for r in caption.annotate(demo) if isinstance(r, Annotation)]
        figures["collisions_demo"] = _collisions(demo_results)
        tagged_demo = [r for r in tagging.annotate(demo) if isinstance(r, Annotation)]
        figures["collisions_demo_with_image_tags"] = _collisions(tagged_demo)
        figures["slot_order"] = _order_study(caption, synthetic[:n_order])
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    return figures


def main() -> None:
    figures = run(quick="--quick" in sys.argv[1:])
    for name, value in figures.items():
        if isinstance(value, dict):
            print(f"{name}: " + ", ".join(f"{k}={v}" for k, v in value.items()))
        else:
            print(f"{name}: {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
