"""Retrieval quality and latency on the bundled demo set: ``ssi-plugin eval`` through the Python API.

    python -m benchmarks.evaluation            # every retriever; trains the generators (cached between runs)
    python -m benchmarks.evaluation --quick    # BM25 and dense MiniLM only: no training

Uses the embedded local node (or ``SSI_ENGINE_URL``) and the cache folder
(``SSI_CACHE_DIR``), so a second full run reuses the index and the models.
Figures: Recall@1/5/10 and MRR in percent, latency p50/p95 in ms, per retriever.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.config import EngineSettings
from ssi_plugin.datasets import read_dataset
from ssi_plugin.demo_data import materialize_demo_dataset
from ssi_plugin.engine import connect
from ssi_plugin.evaluation import (
    EvalOptions,
    default_variants,
    evaluate,
    markdown_table,
)


def run(quick: bool) -> dict:
    settings = EngineSettings()
    with tempfile.TemporaryDirectory(prefix="ssi-bench-eval-") as tmp:
        dataset = materialize_demo_dataset(Path(tmp) / "demo")
        options = EvalOptions(work_dir=settings.cache_dir / "eval", variants=() if quick else tuple(default_variants()))
        with connect(settings) as engine, create_annotator("caption") as annotator:
            report = evaluate(engine, read_dataset(dataset), annotator, options, dataset="demo", log=print)
    print(markdown_table(report))
    figures: dict = {"images": report.images, "queries": report.queries}
    for result in report.results:
        m = result.metrics
        figures[result.name] = {**{f"recall_at_{k}": round(100 * v, 1) for k, v in m.recall.items()}, "mrr": round(100 * m.mrr, 1),
                                "latency_p50_ms": round(m.latency_p50_ms, 1), "latency_p95_ms": round(m.latency_p95_ms, 1)}
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
