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

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ssi_plugin.annotation.base import Annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.layout import cluster_layout, index_body, install_layout, map_doc_ids
from ssi_plugin.engine.vectors import VECTOR_FIELD
from ssi_plugin.identifiers import CollisionReport, CollisionResolver
from ssi_plugin.indexing.documents import CAPTION_FIELD, image_document, indexed_records
from ssi_plugin.indexing.vectors import CaptionVectors
from ssi_plugin.jobs import Job, JobSummary


class IngestSummary(JobSummary):
    index: str
    indexed: int
    vectors: int = 0
    """Documents given a caption vector (new ones, and those an earlier run indexed without one)."""
    collisions: CollisionReport

    @property
    def docs_per_second(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0


def ensure_index(engine: EngineClient, index: str) -> bool:
    """Install the layout (idempotent) and create ``index`` with the SSI mappings if it is missing.

    The index names the ``ssi-derive`` pipeline only where the cluster can run it.
    """
    install_layout(engine)
    if engine.exists(f"/{index}"):
        map_doc_ids(engine, index)  # made before the layout had the id field (perhaps without the pipeline)
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
    job = Job("ingesting", failures=failures, total=total, progress=progress, counters=("indexed", "vectors"))
    ensure_index(engine, index)
    embedder = CaptionVectors(engine, index, caption_field=CAPTION_FIELD) if vectors else None
    unembedded = embedder.lacking() if embedder else set()
    resolver = CollisionResolver()
    for record in indexed_records(engine, index):
        if (record.annotator, record.version) == (annotator.name, annotator.version):
            resolver.register(record.id, record.assignment)
            job.done.add(record.id)
    identified = set(job.done)

    def actions() -> Iterator[dict[str, Any]]:
        for batch in job.batches(records, annotator.batch_size, redo=unembedded):
            fresh = [image for image in batch if image.id not in identified]
            identified.update(image.id for image in fresh)
            documents = {image.id: image_document(image, record) for image, record in job.annotate(fresh, annotator, resolver)}
            backfill = {image.id: {CAPTION_FIELD: image.captions[0] if image.captions else None}
                        for image in batch if image.id in unembedded}
            if embedder:
                job.count("vectors", embedder.add([*documents.values(), *backfill.values()]))
            for image_id, document in documents.items():
                yield {"_op_type": "index", "_index": index, "_id": image_id, "_source": document}
            for image_id, document in backfill.items():
                yield {"_op_type": "update", "_index": index, "_id": image_id, "doc": {VECTOR_FIELD: document.get(VECTOR_FIELD)}}

    with job:
        job.index(engine, actions(), chunk_size=chunk_size,
                  counter=lambda outcome: "skipped" if outcome.id in unembedded else "indexed")
    engine.refresh(index)
    return job.summary(IngestSummary, index=index, collisions=resolver.report())
