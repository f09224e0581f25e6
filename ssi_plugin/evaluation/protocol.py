"""The evaluation protocol: the first caption is the image's metadata, the other captions are queries.

A query is answered correctly when its own image is ranked. Images with a
single caption are still ingested (they are distractors) but ask nothing;
images without a caption cannot be ingested and are counted as skipped.

With an *unseen* fraction, a seeded share of the images is held back from
training: they are ingested after the generators are trained (a trie update,
no retraining), as new images reach a search engine every day, and every
figure is reported for seen and unseen images apart.
"""

from __future__ import annotations

import hashlib
import json
import random
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
    unseen: frozenset[str] = frozenset()
    """Images held back from training and ingested after it."""

    @property
    def seen_documents(self) -> tuple[ImageRecord, ...]:
        return tuple(record for record in self.documents if record.id not in self.unseen)

    @property
    def unseen_documents(self) -> tuple[ImageRecord, ...]:
        return tuple(record for record in self.documents if record.id in self.unseen)

    def fingerprint(self) -> str:
        """A content hash of the ingested side (ids, first captions, images, which are ingested late): an index
        built from it can be reused. Without unseen images it is the hash of the documents alone."""
        payload: list = [[record.id, record.image, list(record.captions)] for record in self.documents]
        if self.unseen:
            payload.append(sorted(self.unseen))
        return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def split_for_evaluation(
    records: Iterable[ImageRecord], *, max_queries: int | None = None, unseen: float = 0.0, seed: int = 0
) -> EvalSplit:
    """Documents keep only their first caption; every further non-blank caption becomes a query.

    Queries are ordered round-robin over images (every image's second caption,
    then every third...), so ``max_queries`` (for quicker runs) keeps queries
    spread over the images rather than all the queries of the first few. Every
    image is still ingested. ``unseen`` is the fraction of the images that ask
    queries to hold back from training, drawn with ``seed`` (at least one, and
    at least one left to train on).
    """
    if not 0 <= unseen < 1:
        raise InputError(f"the unseen fraction must be within [0, 1), got {unseen}")
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
    return EvalSplit(documents=tuple(documents), queries=tuple(queries), skipped=tuple(skipped),
                     unseen=_held_back(documents, queries, unseen, seed))


def _held_back(documents: Sequence[ImageRecord], queries: Sequence[EvalQuery], fraction: float, seed: int) -> frozenset[str]:
    """A seeded sample of the images: ``fraction`` of those with a query, drawn from the sorted ids (so the order
    of the dataset does not matter), at least one when ``fraction`` > 0."""
    if not fraction:
        return frozenset()
    asked = sorted({query.relevant for query in queries})
    if len(documents) < 2:
        raise InputError("holding images back from training needs at least two images")
    count = min(max(1, round(fraction * len(asked))), len(documents) - 1, len(asked))
    return frozenset(random.Random(seed).sample(asked, count))
