"""What an indexed image looks like, and how to read identifiers back out of an index."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.layout import DOC_ID_FIELD
from ssi_plugin.engine.scan import scan
from ssi_plugin.errors import EngineError, InvalidIdentifier
from ssi_plugin.generation.examples import TrainingExample
from ssi_plugin.identifiers import SSIRecord, parse_ssi

CAPTION_FIELD = "caption"


def image_document(image: ImageRecord, record: SSIRecord) -> dict[str, Any]:
    """The ``_source`` of one image: its own fields untouched, plus the full ``ssi`` object.

    The slot fields are sent as well as ``ssi.id``: where the ``ssi-derive``
    pipeline runs it derives the same values (a tested parity), and where no
    pipeline can run (an Elasticsearch core node) the document is still complete.
    """
    document: dict[str, Any] = {CAPTION_FIELD: image.captions[0] if image.captions else None, "captions": list(image.captions)}
    if image.image is not None:
        document["image"] = image.image
    if image.metadata:
        document["metadata"] = image.metadata
    document["ssi"] = record.index_fields()
    document[DOC_ID_FIELD] = image.id
    return document


def ids_in_doc_values(engine: EngineClient, index: str) -> bool:
    """Whether every document of ``index`` (an index or alias) holds its id in ``DOC_ID_FIELD`` doc values: a keyword
    with doc values in every index, and no document without one (an index written before the field was, until it is
    reindexed). False too where the cluster does not say (unreachable, or a refusal): the stored ids serve every case.
    Asks what a role that may read the index may ask (field capabilities, a count)."""
    try:
        caps = engine.request("GET", f"/{index}/_field_caps", params={"fields": DOC_ID_FIELD, "include_unmapped": "true"})
        kinds = (caps or {}).get("fields", {}).get(DOC_ID_FIELD, {})
        if set(kinds) != {"keyword"} or not kinds["keyword"].get("aggregatable"):
            return False
        lacking = engine.request("POST", f"/{index}/_count",
                                 body={"query": {"bool": {"must_not": {"exists": {"field": DOC_ID_FIELD}}}}})
    except EngineError:
        return False
    return (lacking or {}).get("count") == 0


def indexed_records(engine: EngineClient, index: str) -> Iterator[SSIRecord]:
    """The identified images of ``index``; documents without a valid identifier are passed over."""
    for hit in scan(engine, index, query={"exists": {"field": "ssi.id"}}, source=["ssi", CAPTION_FIELD]):
        source = hit.get("_source", {})
        fields = source.get("ssi", {})
        if "ssi_error" in source:
            continue
        try:
            yield SSIRecord(
                id=hit["_id"],
                ssi=parse_ssi(fields["id"]),
                rationale=fields.get("rationale") or "No rationale was stored.",
                annotator=fields.get("annotator") or "unknown",
                version=fields.get("version") or "unknown",
                caption=source.get(CAPTION_FIELD),
            )
        except (InvalidIdentifier, KeyError, ValueError):
            continue


def identifier_pairs(engine: EngineClient, index: str) -> Iterator[tuple[str, str]]:
    """(identifier, image id) of every identified image: what a trie is built from."""
    for record in indexed_records(engine, index):
        yield record.ssi.id, record.id


def training_examples(engine: EngineClient, index: str) -> Iterator[TrainingExample]:
    """Caption → identifier (+ rationale) of every identified image: the generator memorises its index."""
    for record in indexed_records(engine, index):
        if record.caption:
            yield TrainingExample(text=record.caption, identifier=record.ssi.id, rationale=record.rationale, image_id=record.id)
