"""Karpathy-split JSON (``dataset_flickr30k.json``, ``dataset_coco.json``, ``dataset_flickr8k.json``).

``{"images": [{"filename", "filepath"?, "split", "sentences": [{"raw", "tokens"}...],
"imgid", "cocoid"?}, ...]}``. Images live in a folder given separately; an entry's
``filepath`` (COCO: ``train2014`` / ``val2014``) is a subfolder of it when that
subfolder exists. The record id is the COCO id when there is one, else the file
name without its extension (the Flickr photo id), both stable across releases,
unlike ``imgid`` which is a position in the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ssi_plugin.datasets._fields import Identifier, clean_captions
from ssi_plugin.datasets._paths import resolve_image
from ssi_plugin.datasets.records import ImageRecord
from ssi_plugin.errors import InputError, describe_validation_error


class KarpathySentence(BaseModel):
    raw: str | None = None
    tokens: list[str] | None = None

    @property
    def text(self) -> str:
        return self.raw if self.raw is not None else " ".join(self.tokens or ())


class KarpathyImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    filename: str = Field(min_length=1)
    filepath: str | None = None
    split: str | None = None
    sentences: list[KarpathySentence] = Field(default_factory=list)
    imgid: int | str | None = None
    cocoid: Identifier | None = None

    @property
    def record_id(self) -> str:
        return self.cocoid if self.cocoid is not None else Path(self.filename).stem


def is_karpathy(data: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and "annotations" not in data


def iter_karpathy(data: object, path: Path, *, images_dir: Path | None = None) -> Iterator[tuple[str, ImageRecord]]:
    """``(location, record)`` pairs of a parsed Karpathy-split file read from ``path``."""
    if not is_karpathy(data):
        raise InputError(f'{path}: not a Karpathy-split file (expected an object with an "images" list)')
    base = images_dir if images_dir is not None else path.parent
    folders: dict[str, Path] = {}
    for index, raw in enumerate(data["images"]):
        where = f"images[{index}]"
        try:
            entry = KarpathyImage.model_validate(raw)
        except ValidationError as exc:
            raise InputError(f"{path} {where}: {describe_validation_error(exc)}") from None
        folder = _image_folder(base, entry.filepath, folders)
        metadata: dict[str, object] = {"filename": entry.filename}
        for key in ("split", "imgid", "cocoid"):
            if (value := getattr(entry, key)) is not None:
                metadata[key] = value
        yield (
            where,
            ImageRecord(
                id=entry.record_id,
                image=resolve_image(entry.filename, folder),
                captions=clean_captions(s.text for s in entry.sentences),
                metadata=metadata,
            ),
        )


def _image_folder(base: Path, filepath: str | None, seen: dict[str, Path]) -> Path:
    """``base/filepath`` when that folder exists (or nothing exists yet), else ``base`` itself.

    People point at either ``coco/`` or ``coco/val2014/``; both work. Checked once per subfolder.
    """
    if not filepath:
        return base
    if filepath not in seen:
        nested = base / filepath
        seen[filepath] = nested if nested.is_dir() or not base.is_dir() else base
    return seen[filepath]
