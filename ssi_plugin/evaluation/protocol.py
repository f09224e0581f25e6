"""The evaluation protocol: the first caption is the image's metadata, the other captions are queries.

A query is answered correctly when its own image is ranked. Images with a
single caption are still ingested (they are distractors) but ask nothing;
images without a caption cannot be ingested and are counted as skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import InputError


class EvalQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    relevant: str


class EvalSplit(BaseModel):
    """What is ingested (one caption per image) and what is asked."""

    model_config = ConfigDict(frozen=True)

    documents: tuple[ImageRecord, ...]
    queries: tuple[EvalQuery, ...]
    skipped: tuple[str, ...] = ()

    def fingerprint(self) -> str:
        """A content hash of the ingested side (ids, first captions, images): an index built from it can be reused."""
        payload = [[record.id, record.image, list(record.captions)] for record in self.documents]
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def split_for_evaluation(records: Iterable[ImageRecord], *, max_queries: int | None = None) -> EvalSplit:
    """Documents keep only their first caption; every further non-blank caption becomes a query.

    Queries are ordered round-robin over images (every image's second caption,
    then every third...), so ``max_queries`` (for quicker runs) keeps queries
    spread over the images rather than all the queries of the first few. Every
    image is still ingested.
    """
    documents: list[ImageRecord] = []
    ranked: list[tuple[int, int, EvalQuery]] = []
    skipped: list[str] = []
    for record in records:
        captions = [caption for caption in record.captions if caption.strip()]
        if not captions:
            skipped.append(record.id)
            continue
        ranked += [(position, len(documents), EvalQuery(text=text, relevant=record.id))
                   for position, text in enumerate(captions[1:])]
        documents.append(record.model_copy(update={"captions": (captions[0],)}))
    queries = [query for _, _, query in sorted(ranked, key=lambda item: item[:2])]
    if not documents:
        raise InputError("the dataset has no image with a caption to ingest")
    if not queries:
        raise InputError("no image has a second caption: the protocol queries with captions after the first")
    if max_queries is not None:
        queries = queries[:max_queries]
    return EvalSplit(documents=tuple(documents), queries=tuple(queries), skipped=tuple(skipped))


def first_captions(documents: Sequence[ImageRecord]) -> tuple[list[str], list[str]]:
    """``(ids, captions)`` of the ingested side, in order."""
    return [record.id for record in documents], [record.captions[0] for record in documents]
