"""The whole loop on the bundled real photographs, on the embedded engine: ``ssi-plugin demo``.

Materialize the demo set, then run the evaluation protocol on it (ingest the
first captions with their vectors, train the SSI generator — with ``full`` also
its ablations — or reuse those trained before, ask the other captions of BM25,
dense MiniLM (exact and through the engine's kNN search), SSI and SSI fused with
the engine's kNN search), and show a few example searches with their identifiers and
matched concepts. A share of the photographs (``UNSEEN``) is held back from
training and ingested after it, so the table shows how images that arrive after
training are found. Everything is cached under the cache directory, so a second
run takes seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from ssi_plugin.engine import EngineClient
from ssi_plugin.evaluation import (
    HYBRID_FAMILY,
    EvalOptions,
    EvalReport,
    ReportFiles,
    default_variants,
    evaluate,
    write_report,
)
from ssi_plugin.search import SearchResult, SSISearcher

DEMO_INDEX = "ssi-demo"
EXAMPLE_QUERIES = 4
UNSEEN = 0.3
"""Share of the photographs ingested after training, as new images arrive in a search engine."""


class DemoResult(BaseModel):
    report: EvalReport
    files: ReportFiles
    examples: list[SearchResult]
    example_images: list[str]
    """The image each example query was written for."""


def run_demo(
    engine: EngineClient,
    cache_dir: Path,
    *,
    epochs: int | None = None,
    full: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = lambda line: None,
) -> DemoResult:
    """``full`` also trains the ablations (SSI without RGS, numeric ids): about three times the training time."""
    from ssi_plugin.annotation.factory import create_annotator
    from ssi_plugin.datasets import read_dataset
    from ssi_plugin.demo_data import materialize_demo_dataset

    work_dir = cache_dir / "demo"
    log(f"Writing the demo set (real photographs, hand-written captions) to {work_dir / 'data'}")
    dataset = materialize_demo_dataset(work_dir / "data")
    records = list(read_dataset(dataset))
    variants = [variant for variant in default_variants(epochs=epochs) if full or variant.family in ("ssi", HYBRID_FAMILY)]
    options = EvalOptions(work_dir=work_dir, index=DEMO_INDEX, variants=tuple(variants), unseen=UNSEEN, progress=progress)
    with create_annotator("caption") as annotator:
        report = evaluate(engine, records, annotator, options, dataset=str(dataset), log=log)
    files = write_report(report, work_dir / "report.json")

    searcher = SSISearcher.open(engine, DEMO_INDEX, model_dir=Path(report.models["ssi"]["folder"]), cache_dir=cache_dir)
    asked = [record for record in records if len(record.captions) > 1][:: max(1, len(records) // EXAMPLE_QUERIES)][:EXAMPLE_QUERIES]
    examples = [searcher.search(record.captions[1], size=3) for record in asked]
    return DemoResult(report=report, files=files, examples=examples, example_images=[record.id for record in asked])
