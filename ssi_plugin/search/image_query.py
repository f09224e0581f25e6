"""An image as the query: the annotator that describes indexed images describes the query image the same way.

The image (a ``data:`` URL, or an http(s) URL read under ``ImageURLReader``'s rules: public addresses only, size
and time limits) is annotated like a record at ingest, with the query text as its caption when there is one. Its
identifier becomes the one candidate, with all the probability, and its concepts the concept list: the plan then
asks for images with that exact identifier and, weighted alike, for images sharing its concepts. No generator
runs: the annotator already speaks the index's vocabulary.

    reader = QueryImageReader()                     # the offline annotator: caption words + image tags
    annotation = reader.annotate("data:image/png;base64,...", caption="a dog")
    generation = image_generation(annotation, caption="a dog")
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssi_plugin.annotation.base import Annotation, AnnotationFailure, Annotator
from ssi_plugin.annotation.image_urls import ImageURLReader
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import InputError
from ssi_plugin.generation.generator import Candidate, GenerationResult

if TYPE_CHECKING:
    from ssi_plugin.annotation.factory import AnnotatorOptions

ANNOTATED_SIDE = 1024
"""Longest side, in pixels, of the query image the annotator sees: more than any annotator here looks at."""


def default_annotator() -> Annotator:
    """The offline annotator with the image classifier: concepts from the caption, and from the pixels."""
    from ssi_plugin.annotation.factory import AnnotatorOptions, create_annotator

    return create_annotator("caption", AnnotatorOptions(image_tags=True))


class QueryImageReader:
    """Reads query images and has ``annotator`` describe them (None: ``default_annotator``, built on the first image).

    One image at a time: annotators are not documented as safe to call from several threads.
    """

    def __init__(self, annotator: Annotator | None = None, *, urls: ImageURLReader | None = None) -> None:
        self._annotator = annotator
        self._urls = urls or ImageURLReader(local_hint=None)
        self._lock = threading.Lock()
        self._kind: tuple[str, AnnotatorOptions | None] | None = None

    @classmethod
    def of_kind(cls, kind: str, options: AnnotatorOptions | None = None, *, urls: ImageURLReader | None = None) -> QueryImageReader:
        """A reader whose annotator is ``create_annotator(kind, options)`` (built now: a wrong option fails here).

        Unlike an annotator object, it can be sent to another process (``serve --workers``), which builds its own.
        """
        from ssi_plugin.annotation.factory import create_annotator

        reader = cls(create_annotator(kind, options), urls=urls)
        reader._kind = (kind, options)
        return reader

    def __reduce__(self) -> tuple[Any, ...]:
        if self._kind is not None:
            return _rebuilt, (self._kind, self._urls)
        if self._annotator is None:
            return _rebuilt, (None, self._urls)
        raise TypeError("a QueryImageReader made with an annotator object cannot be sent to another process: "
                        "make it with QueryImageReader.of_kind(kind, options)")

    def annotate(self, image: str, *, caption: str | None = None) -> Annotation:
        """The annotation of ``image``; ``InputError`` naming what is wrong with it (refused, not an image, no concept)."""
        from PIL import Image

        try:
            decoded = self._urls.read(image)
        except InputError as exc:
            raise InputError(f"[ssi.image]: {exc}") from None
        decoded.thumbnail((ANNOTATED_SIDE, ANNOTATED_SIDE), Image.Resampling.LANCZOS)
        with self._lock, tempfile.TemporaryDirectory(prefix="ssi-query-image-") as folder:
            path = Path(folder) / "query.png"
            decoded.save(path)
            if self._annotator is None:
                self._annotator = default_annotator()
            record = ImageRecord(id="query", image=str(path), captions=(caption,) if caption else ())
            (result,) = self._annotator.annotate_batch([record])
        if isinstance(result, AnnotationFailure):
            detail = result.detail.replace(str(path), "the query image")
            raise InputError(f"[ssi.image]: the image gives no identifier ({result.reason}): {detail}")
        return result

    def close(self) -> None:
        if self._annotator is not None:
            self._annotator.close()


def _rebuilt(kind: tuple[str, AnnotatorOptions | None] | None, urls: ImageURLReader) -> QueryImageReader:
    """A reader sent to another process, built there as it was made: by kind, or with the default annotator."""
    return QueryImageReader(urls=urls) if kind is None else QueryImageReader.of_kind(*kind, urls=urls)


def image_generation(annotation: Annotation, *, caption: str | None) -> GenerationResult:
    """What the plan asks for an annotated query image: its identifier exactly, and its concepts, all at full weight."""
    return GenerationResult(
        query=caption or "",
        candidates=[Candidate(identifier=annotation.ssi.id, score=0.0, image_ids=())],
        concepts=dict.fromkeys(annotation.ssi.concepts, 1.0),
        query_tokens=0,
    )
