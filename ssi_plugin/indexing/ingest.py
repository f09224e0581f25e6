"""Annotate a dataset and index it: the ``ssi-plugin ingest`` job.

A generator chain: records → (skip those the index already holds with this
annotator version) → annotator batches → collision-free identifiers →
streaming bulk (429s retried with backoff) → per-item outcome. Annotation and
indexing failures go to one JSONL failure file with the stage and the reason;
nothing is dropped silently. Rerunning is idempotent: the index itself is the
checkpoint, and its identifiers seed the collision resolver so a resumed run
assigns what an uninterrupted one would.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ssi_plugin.annotation.base import AnnotationFailure, Annotator
from ssi_plugin.annotation.job import ssi_record
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.layout import cluster_layout, index_body, install_layout
from ssi_plugin.engine.vectors import VECTOR_FIELD
from ssi_plugin.identifiers import CollisionReport, CollisionResolver
from ssi_plugin.indexing.documents import CAPTION_FIELD, image_document, indexed_records
from ssi_plugin.indexing.failures import FailureLog
from ssi_plugin.indexing.prefetch import prefetched
from ssi_plugin.indexing.vectors import CaptionVectors
from ssi_plugin.progress import progress_bar


class IngestSummary(BaseModel):
    index: str
    indexed: int
    skipped: int
    vectors: int = 0
    """Documents given a caption vector (new ones, and those an earlier run indexed without one)."""
    failed: int
    failures: Path
    collisions: CollisionReport
    seconds: float

    @property
    def docs_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


def ensure_index(engine: EngineClient, index: str) -> bool:
    """Install the layout (idempotent) and create ``index`` with the SSI mappings if it is missing.

    The index names the ``ssi-derive`` pipeline only where the cluster can run it.
    """
    install_layout(engine)
    if engine.exists(f"/{index}"):
        return False
    engine.request("PUT", f"/{index}", body=index_body(cluster_layout(engine).resources))
    return True


def ingest(
    engine: EngineClient,
    records: Iterable[ImageRecord],
    annotator: Annotator,
    *,
    index: str,
    failures: Path,
    total: int | None = None,
    chunk_size: int = 500,
    vectors: bool = False,
    progress: bool = True,
) -> IngestSummary:
    """Annotate and index ``records`` into ``index``; return what happened.

    ``vectors``: also write each caption's embedding (``ssi_plugin.indexing.vectors``), and give one to the
    documents an earlier run indexed without it.
    """
    started = time.perf_counter()
    ensure_index(engine, index)
    embedder = CaptionVectors(engine, index, caption_field=CAPTION_FIELD) if vectors else None
    unembedded = embedder.lacking() if embedder else set()
    resolver = CollisionResolver()
    done: set[str] = set()
    for record in indexed_records(engine, index):
        if (record.annotator, record.version) == (annotator.name, annotator.version):
            resolver.register(record.id, record.assignment)
            done.add(record.id)

    counts = {"indexed": 0, "skipped": 0, "vectors": 0}
    with FailureLog(failures) as failure_log, progress_bar("ingesting", total=total, enabled=progress) as advance:

        def pending() -> Iterator[ImageRecord]:
            for record in records:
                if record.id in done and record.id not in unembedded:
                    counts["skipped"] += 1
                    advance(1)
                    continue
                yield record

        def actions() -> Iterator[dict[str, Any]]:
            stream = pending()
            while batch := list(itertools.islice(stream, annotator.batch_size)):
                fresh = [image for image in batch if image.id not in done]
                done.update(image.id for image in fresh)
                documents = {}
                for image, result in zip(fresh, annotator.annotate_batch(fresh) if fresh else [], strict=True):
                    if isinstance(result, AnnotationFailure):
                        failure_log.add(image.id, "annotate", result.reason, result.detail)
                        advance(1)
                        continue
                    documents[image.id] = image_document(image, ssi_record(result, annotator, resolver))
                backfill = {image.id: {CAPTION_FIELD: image.captions[0] if image.captions else None}
                            for image in batch if image.id in unembedded}
                if embedder:
                    counts["vectors"] += embedder.add([*documents.values(), *backfill.values()])
                for image_id, document in documents.items():
                    yield {"_op_type": "index", "_index": index, "_id": image_id, "_source": document}
                for image_id, document in backfill.items():
                    yield {"_op_type": "update", "_index": index, "_id": image_id, "doc": {VECTOR_FIELD: document.get(VECTOR_FIELD)}}

        with prefetched(actions(), buffer=2 * chunk_size) as stream:
            for outcome in engine.bulk(stream, chunk_size=chunk_size):
                if not outcome.ok:
                    failure_log.add(outcome.id or "?", "index", f"status {outcome.status}", outcome.error)
                elif outcome.id in unembedded:
                    counts["skipped"] += 1
                else:
                    counts["indexed"] += 1
                advance(1)
    engine.refresh(index)
    return IngestSummary(
        index=index, failures=failures, failed=failure_log.count, collisions=resolver.report(),
        seconds=time.perf_counter() - started, **counts,
    )
