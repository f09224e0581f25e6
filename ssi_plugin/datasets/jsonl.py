"""The JSONL dataset format: one image a line, ``{"id": ..., "image": ..., "captions": [...]}``.

Other keys on a line are kept in ``ImageRecord.metadata`` (a ``split`` key there
is what ``read_dataset(split=...)`` filters on), and ``write_jsonl`` writes them
back as top-level keys, so reading and writing round-trip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ssi_plugin.datasets._fields import Identifier, clean_captions
from ssi_plugin.datasets._paths import relative_image, resolve_image
from ssi_plugin.datasets.records import ImageRecord
from ssi_plugin.errors import InputError, describe_validation_error

_RESERVED = ("id", "image", "captions")


class JsonlLine(BaseModel):
    """One line as written by users; a missing image or caption is allowed (the annotator records it)."""

    model_config = ConfigDict(extra="allow")

    id: Identifier
    image: str | None = None
    captions: list[str] = Field(default_factory=list)

    @field_validator("captions", mode="before")
    @classmethod
    def _one_caption_as_a_string(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def to_record(self, base: Path) -> ImageRecord:
        image = self.image.strip() if self.image else None
        return ImageRecord(
            id=self.id,
            image=resolve_image(image, base) if image else None,
            captions=clean_captions(self.captions),
            metadata=dict(self.model_extra or {}),
        )


def iter_jsonl(path: Path, *, images_dir: Path | None = None) -> Iterator[tuple[str, ImageRecord]]:
    """``(location, record)`` pairs; relative image paths are taken from ``images_dir`` or the file's folder."""
    base = images_dir if images_dir is not None else path.parent
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                entry = JsonlLine.model_validate_json(line)
            except ValidationError as exc:
                raise InputError(f"{path} line {number}: {describe_validation_error(exc)}") from None
            yield f"line {number}", entry.to_record(base)


def write_jsonl(records: Iterable[ImageRecord], path: str | os.PathLike[str]) -> int:
    """Write records as a JSONL dataset, atomically; returns how many were written.

    Image paths under the file's folder are written relative to it, so the folder
    can be moved or copied as a whole.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    count = 0
    try:
        with partial.open("w", encoding="utf-8") as out:
            for record in records:
                clash = [key for key in _RESERVED if key in record.metadata]
                if clash:
                    raise InputError(
                        f"record {record.id!r}: metadata key {clash[0]!r} would overwrite the {clash[0]} field"
                    )
                line: dict[str, object] = {"id": record.id}
                if record.image is not None:
                    line["image"] = relative_image(record.image, path.parent)
                line["captions"] = list(record.captions)
                line.update(record.metadata)
                out.write(json.dumps(line, ensure_ascii=False) + "\n")
                count += 1
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count
