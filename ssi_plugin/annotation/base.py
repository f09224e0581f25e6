"""The one contract every annotator keeps: records in, one result per record out, in order.

A result is an ``Annotation`` (an identifier, its rationale, and spare concepts
for collision disambiguation) or an ``AnnotationFailure`` with a stable reason
name. A bad record never raises out of ``annotate``: one corrupt image or one
unusable model answer must not end a run over a million images.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict

from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import AnnotationError
from ssi_plugin.identifiers import SSI

FailureReason = Literal[
    "caption_missing",  # no caption, or only whitespace (and, for image models, no image either)
    "caption_not_english",  # the caption is in another language
    "caption_injection",  # the caption holds nothing but instructions to the model
    "image_unreadable",  # missing file, failed download, corrupt or unsupported image
    "no_concept",  # nothing in the caption/image gave a usable concept
    "model_output_invalid",  # the model's answer stayed invalid after repair and retries
    "request_failed",  # the endpoint did not answer successfully after retries
]


class Annotation(BaseModel):
    """An identifier for one record, before collision disambiguation."""

    model_config = ConfigDict(frozen=True)

    id: str
    ssi: SSI
    rationale: str
    caption: str | None = None
    reserve: tuple[str, ...] = ()
    """Slot-prefixed concepts that did not fit (``objects:bench``), most salient first."""


class AnnotationFailure(BaseModel):
    """A record that could not be annotated, with a stable reason name and a human detail."""

    model_config = ConfigDict(frozen=True)

    id: str
    reason: FailureReason
    detail: str
    image: str | None = None
    caption: str | None = None

    @classmethod
    def from_error(cls, record: ImageRecord, error: AnnotationError) -> AnnotationFailure:
        caption = record.captions[0] if record.captions else None
        return cls(id=record.id, reason=error.reason, detail=error.detail, image=record.image, caption=caption)


AnnotationResult = Annotation | AnnotationFailure


class Annotator(ABC):
    """Turns image records into identifiers. Subclasses implement ``annotate_batch``.

    ``name`` says which kind of annotator wrote an identifier, ``version`` which
    model and prompt (stored as ``ssi.annotator`` / ``ssi.version``, so a model
    change is traceable). ``close`` frees models and connections.
    """

    name: str
    batch_size: int = 32

    @property
    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def annotate_batch(self, records: Sequence[ImageRecord]) -> list[AnnotationResult]:
        """One result per record, in order; per-record problems become ``AnnotationFailure``."""

    def annotate(self, records: Iterable[ImageRecord]) -> Iterator[AnnotationResult]:
        """Results for a stream of records, in order, ``batch_size`` at a time."""
        iterator = iter(records)
        while batch := list(itertools.islice(iterator, self.batch_size)):
            yield from self.annotate_batch(batch)

    def close(self) -> None:  # noqa: B027  (optional hook: most annotators hold nothing)
        """Release what the annotator holds; the default holds nothing."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
