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

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ssi_plugin.annotation.base import AnnotationFailure, Annotator
from ssi_plugin.annotation.job import ssi_record
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.scan import scan
from ssi_plugin.errors import ConfigError, InputError, InvalidIdentifier, PartialFailure
from ssi_plugin.identifiers import CollisionResolver, SSIRecord, parse_ssi
from ssi_plugin.indexing.documents import CAPTION_FIELD, indexed_records
from ssi_plugin.indexing.failures import FailureLog
from ssi_plugin.indexing.ingest import ensure_index
from ssi_plugin.indexing.prefetch import prefetched
from ssi_plugin.indexing.vectors import CaptionVectors
from ssi_plugin.progress import progress_bar


class ReindexSummary(BaseModel):
    source: str
    dest: str
    source_count: int
    dest_count: int
    copied: int
    annotated: int
    skipped: int
    failed: int
    failures: Path
    alias: str | None
    alias_moved: bool
    seconds: float


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
    started = time.perf_counter()
    if source == dest:
        raise ConfigError("--source and --dest must be different indices")
    if not engine.exists(f"/{source}"):
        raise InputError(f"source index {source!r} does not exist on {engine.url}")
    if alias is not None and engine.exists(f"/{alias}") and not engine.exists(f"/_alias/{alias}"):
        raise ConfigError(f"{alias!r} is an index, not an alias: choose another --alias name")
    if engine.exists(f"/{dest}") and engine.count(dest) and not resume:
        raise ConfigError(f"destination {dest!r} already holds {engine.count(dest)} documents: pass --resume to continue it")
    ensure_index(engine, dest)
    embedder = CaptionVectors(engine, dest, caption_field=caption_field) if vectors else None

    resolver = CollisionResolver()
    done: set[str] = set()
    for record in indexed_records(engine, dest):
        resolver.register(record.id, record.assignment)
        done.add(record.id)
    for hit in scan(engine, source, source=["ssi"]):
        kept = _current_identifier(hit, annotator)
        if kept is not None and hit["_id"] not in done:
            resolver.register(hit["_id"], kept.assignment)

    source_count = engine.count(source)
    counts = {"copied": 0, "annotated": 0, "skipped": 0}
    with FailureLog(failures) as failure_log, progress_bar("reindexing", total=source_count, enabled=progress) as advance:

        def actions() -> Iterator[dict[str, Any]]:
            for hit in scan(engine, source, page_size=chunk_size):
                document = {key: value for key, value in hit.get("_source", {}).items() if key != "ssi_error"}
                if hit["_id"] in done:
                    counts["skipped"] += 1
                    advance(1)
                    continue
                record = _current_identifier(hit, annotator)
                if record is not None:
                    counts["copied"] += 1
                else:
                    record = _annotate(hit, document, annotator, resolver, caption_field, image_field, failure_log)
                    if record is None:
                        advance(1)
                        continue
                    counts["annotated"] += 1
                yield {"_op_type": "index", "_index": dest, "_id": hit["_id"], "_source": {**document, "ssi": record.index_fields()}}

        with prefetched(embedder.embedded(actions()) if embedder else actions(), buffer=2 * chunk_size) as stream:
            for outcome in engine.bulk(stream, chunk_size=chunk_size):
                if not outcome.ok:
                    failure_log.add(outcome.id or "?", "index", f"status {outcome.status}", outcome.error)
                advance(1)
    engine.refresh(dest)
    dest_count = engine.count(dest)
    complete = dest_count == source_count
    if alias is not None and complete:
        _move_alias(engine, alias, dest)
    summary = ReindexSummary(
        source=source, dest=dest, source_count=source_count, dest_count=dest_count, failed=failure_log.count,
        failures=failures, alias=alias, alias_moved=alias is not None and complete,
        seconds=time.perf_counter() - started, **counts,
    )
    if not complete:
        raise PartialFailure(
            f"{dest} holds {dest_count} of {source_count} documents ({failure_log.count} failed, see {failures})"
            + (f"; alias {alias!r} was not moved" if alias else ""),
            failed=failure_log.count,
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


def _annotate(
    hit: dict[str, Any], document: dict[str, Any], annotator: Annotator, resolver: CollisionResolver,
    caption_field: str, image_field: str, failure_log: FailureLog,
) -> SSIRecord | None:
    caption = document.get(caption_field)
    image = ImageRecord(
        id=hit["_id"],
        image=document.get(image_field) if isinstance(document.get(image_field), str) else None,
        captions=(caption,) if isinstance(caption, str) else (),
    )
    result = annotator.annotate_batch([image])[0]
    if isinstance(result, AnnotationFailure):
        failure_log.add(image.id, "annotate", result.reason, result.detail)
        return None
    return ssi_record(result, annotator, resolver)


def _move_alias(engine: EngineClient, alias: str, dest: str) -> None:
    actions: list[dict[str, Any]] = []
    if engine.exists(f"/_alias/{alias}"):
        actions += [{"remove": {"index": index, "alias": alias}} for index in engine.request("GET", f"/_alias/{alias}")]
    actions.append({"add": {"index": dest, "alias": alias}})
    engine.request("POST", "/_aliases", body={"actions": actions})
