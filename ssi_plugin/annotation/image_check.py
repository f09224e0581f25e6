"""Every record's local image checked before it is annotated, whichever annotator runs.

The caption annotator never opens the image, so without this check a record
whose file is missing or corrupt would be indexed and a search would show a
broken picture. A record whose image fails the check (``images.check_image``:
the header opens and verifies, no pixel decode) becomes an ``image_unreadable``
failure, recorded like any other; the rest of the batch goes on.
"""

from __future__ import annotations

from collections.abc import Sequence

from ssi_plugin.annotation.base import AnnotationFailure, AnnotationResult, Annotator
from ssi_plugin.annotation.images import check_image
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.errors import AnnotationError


class ImageCheckedAnnotator(Annotator):
    """``annotator``, given only the records whose image passes the check; same name and version, so outputs mix freely."""

    def __init__(self, annotator: Annotator) -> None:
        self.annotator = annotator
        self.name = annotator.name
        self.batch_size = annotator.batch_size

    @property
    def version(self) -> str:
        return self.annotator.version

    def annotate_batch(self, records: Sequence[ImageRecord]) -> list[AnnotationResult]:
        unreadable: dict[int, AnnotationFailure] = {}
        for position, record in enumerate(records):
            try:
                check_image(record.image)
            except AnnotationError as error:
                unreadable[position] = AnnotationFailure.from_error(record, error)
        readable = [record for position, record in enumerate(records) if position not in unreadable]
        annotated = iter(self.annotator.annotate_batch(readable) if readable else [])
        return [unreadable[position] if position in unreadable else next(annotated) for position in range(len(records))]

    def close(self) -> None:
        self.annotator.close()
