"""End-to-end ingest throughput with the default annotator, caption-only (target: ≥ 500 docs/s on 2 cores).

Synthetic records (captions only, no images) are annotated by the caption
annotator and bulk indexed through the ssi-derive pipeline into the configured
cluster (the embedded node when no URL is set). Annotation alone is timed too,
so the engine's share is visible.

    python -m benchmarks.ingest [--quick]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.config import EngineSettings
from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.engine import connect
from ssi_plugin.indexing import ingest

TARGET_DOCS_PER_S = 500


def run(quick: bool = False) -> dict[str, Any]:
    count = 1000 if quick else 10_000
    records = [synthetic_record(11, n)[0].model_copy(update={"image": None}) for n in range(count)]
    engine = connect(EngineSettings())
    index = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    with create_annotator("caption") as annotator:
        annotator.annotate_batch(records[:64])  # load the spaCy pipeline before timing
        started = time.perf_counter()
        for _ in annotator.annotate(records):
            pass
        annotate_s = time.perf_counter() - started
        try:
            with tempfile.TemporaryDirectory() as scratch:
                summary = ingest(engine, records, annotator, index=index, failures=Path(scratch) / "f.jsonl", progress=False)
        finally:
            engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
            engine.close()
    figures = {
        "docs": count,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "engine": f"{engine.kind} {engine.info.version}",
        "annotate_only_docs_per_s": round(count / annotate_s, 1),
        "ingest_docs_per_s": round(summary.indexed / summary.seconds, 1),
        "ingest_seconds": round(summary.seconds, 2),
        "failed": summary.failed,
        "target_docs_per_s": TARGET_DOCS_PER_S,
    }
    figures["meets_target"] = figures["ingest_docs_per_s"] >= TARGET_DOCS_PER_S
    for name, value in figures.items():
        print(f"{name:>26}: {value}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 documents instead of 10,000")
    run(parser.parse_args().quick)
