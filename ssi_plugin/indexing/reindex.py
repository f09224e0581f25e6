"""Copy an index into a new one with fresh identifiers, then move an alias: ``ssi-plugin reindex``.

Documents that already carry a valid identifier from the current annotator
version are copied as they are; the others (no identifier, a malformed one, or
another annotator version) are annotated from their caption. Their own fields
are never touched.

The destination index is the checkpoint: a rerun with ``resume`` skips what it
already holds, and identifiers are assigned in source order after registering
every kept one, so an interrupted and resumed run writes exactly what an
uninterrupted run writes. The alias moves in one ``_aliases`` call, and only
when the destination holds every source document.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ssi_plugin.annotation.base import Annotator
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.scan import scan
from ssi_plugin.errors import ConfigError, InputError, InvalidIdentifier, PartialFailure
from ssi_plugin.identifiers import CollisionResolver, SSIRecord, parse_ssi
from ssi_plugin.indexing.documents import CAPTION_FIELD, DOC_ID_FIELD, indexed_records
from ssi_plugin.indexing.ingest import ensure_index
from ssi_plugin.indexing.vectors import CaptionVectors
from ssi_plugin.jobs import Job, JobSummary


class ReindexSummary(JobSummary):
    source: str
    dest: str
    source_count: int
    dest_count: int
    copied: int
    annotated: int
    alias: str | None
    alias_moved: bool


def reindex(
    engine: EngineClient,
    annotator: Annotator,
    *,
    source: str,
    dest: str,
    failures: Path,
    alias: str | None = None,
    resume: bool = False,
    caption_field: str = CAPTION_FIELD,
    image_field: str = "image",
    chunk_size: int = 500,
    vectors: bool = False,
    progress: bool = True,
) -> ReindexSummary:
    """Copy ``source`` into ``dest`` (``vectors``: every copied document with its caption's embedding)."""
    if source == dest:
        raise ConfigError("--source and --dest must be different indices")
    if not engine.exists(f"/{source}"):
        raise InputError(f"source index {source!r} does not exist on {engine.url}")
    if alias is not None and engine.exists(f"/{alias}") and not engine.exists(f"/_alias/{alias}"):
        raise ConfigError(f"{alias!r} is an index, not an alias: choose another --alias name")
    if engine.exists(f"/{dest}") and engine.count(dest) and not resume:
        raise ConfigError(f"destination {dest!r} already holds {engine.count(dest)} documents: pass --resume to continue it")
    source_count = engine.count(source)
    job = Job("reindexing", failures=failures, total=source_count, progress=progress, counters=("copied", "annotated"))
    ensure_index(engine, dest)
    embedder = CaptionVectors(engine, dest, caption_field=caption_field) if vectors else None

    resolver = CollisionResolver()
    for record in indexed_records(engine, dest):
        resolver.register(record.id, record.assignment)
        job.done.add(record.id)
    for hit in scan(engine, source, source=["ssi"]):
        kept = _current_identifier(hit, annotator)
        if kept is not None and hit["_id"] not in job.done:
            resolver.register(hit["_id"], kept.assignment)

    def actions() -> Iterator[dict[str, Any]]:
        hits = scan(engine, source, page_size=chunk_size)
        for batch in job.batches(hits, annotator.batch_size, key=lambda hit: hit["_id"]):
            documents = {hit["_id"]: {key: value for key, value in hit.get("_source", {}).items() if key != "ssi_error"}
                         for hit in batch}
            records = {hit["_id"]: record for hit in batch if (record := _current_identifier(hit, annotator)) is not None}
            job.count("copied", len(records))
            unidentified = [_image(image_id, document, caption_field, image_field)
                            for image_id, document in documents.items() if image_id not in records]
            annotated = {image.id: record for image, record in job.annotate(unidentified, annotator, resolver)}
            job.count("annotated", len(annotated))
            records |= annotated
            for image_id, document in documents.items():
                if (record := records.get(image_id)) is not None:
                    written = {**document, DOC_ID_FIELD: image_id, "ssi": record.index_fields()}
                    yield {"_op_type": "index", "_index": dest, "_id": image_id, "_source": written}

    with job:
        job.index(engine, embedder.embedded(actions()) if embedder else actions(), chunk_size=chunk_size)
    engine.refresh(dest)
    dest_count = engine.count(dest)
    complete = dest_count == source_count
    if alias is not None and complete:
        _move_alias(engine, alias, dest)
    summary = job.summary(ReindexSummary, source=source, dest=dest, source_count=source_count, dest_count=dest_count,
                          alias=alias, alias_moved=alias is not None and complete)
    if not complete:
        raise PartialFailure(
            f"{dest} holds {dest_count} of {source_count} documents ({summary.failed} failed, see {failures})"
            + (f"; alias {alias!r} was not moved" if alias else ""),
            failed=summary.failed,
            recorded_at=str(failures),
        )
    return summary


def _current_identifier(hit: dict[str, Any], annotator: Annotator) -> SSIRecord | None:
    """The document's identifier when it is valid and was written by this annotator version."""
    fields = hit.get("_source", {}).get("ssi") or {}
    if "ssi_error" in hit.get("_source", {}):
        return None
    if (fields.get("annotator"), fields.get("version")) != (annotator.name, annotator.version):
        return None
    try:
        return SSIRecord(
            id=hit["_id"], ssi=parse_ssi(fields.get("id", "")), rationale=fields.get("rationale") or "No rationale was stored.",
            annotator=annotator.name, version=annotator.version,
        )
    except (InvalidIdentifier, ValueError):
        return None


def _image(image_id: str, document: dict[str, Any], caption_field: str, image_field: str) -> ImageRecord:
    """What an annotator reads of a source document: its caption and its image path or URL."""
    caption = document.get(caption_field)
    image = document.get(image_field)
    return ImageRecord(id=image_id, image=image if isinstance(image, str) else None,
                       captions=(caption,) if isinstance(caption, str) else ())


def _move_alias(engine: EngineClient, alias: str, dest: str) -> None:
    actions: list[dict[str, Any]] = []
    if engine.exists(f"/_alias/{alias}"):
        actions += [{"remove": {"index": index, "alias": alias}} for index in engine.request("GET", f"/_alias/{alias}")]
    actions.append({"add": {"index": dest, "alias": alias}})
    engine.request("POST", "/_aliases", body={"actions": actions})
