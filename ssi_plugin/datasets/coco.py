"""COCO captions annotations (``captions_train2014.json``, ``captions_val2017.json``, ...).

``{"images": [{"id", "file_name", ...}], "annotations": [{"image_id", "caption"}, ...]}``.
Captions keep the order of the annotations in the file. Other image fields
(``coco_url``, ``width``, ``height``, ...) go to the record's metadata. A COCO file
holds one split: choose the file rather than ``split=``.
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


class CocoImage(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Identifier
    file_name: str = Field(min_length=1)


class CocoCaption(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_id: Identifier
    caption: str


def is_coco(data: object) -> TypeGuard[dict[str, Any]]:
    return isinstance(data, dict) and isinstance(data.get("images"), list) and isinstance(data.get("annotations"), list)


def iter_coco(data: object, path: Path, *, images_dir: Path | None = None) -> Iterator[tuple[str, ImageRecord]]:
    """``(location, record)`` pairs of a parsed COCO captions file read from ``path``."""
    if not is_coco(data):
        raise InputError(f'{path}: not a COCO captions file (expected "images" and "annotations" lists)')
    base = images_dir if images_dir is not None else path.parent
    images: dict[str, tuple[int, CocoImage]] = {}
    for index, raw in enumerate(data["images"]):
        try:
            image = CocoImage.model_validate(raw)
        except ValidationError as exc:
            raise InputError(f"{path} images[{index}]: {describe_validation_error(exc)}") from None
        key = image.id
        if key in images:
            raise InputError(f"{path} images[{index}]: image id {key} already given at images[{images[key][0]}]")
        images[key] = (index, image)
    captions: dict[str, list[str]] = {key: [] for key in images}
    for index, raw in enumerate(data["annotations"]):
        try:
            annotation = CocoCaption.model_validate(raw)
        except ValidationError as exc:
            raise InputError(f"{path} annotations[{index}]: {describe_validation_error(exc)}") from None
        key = annotation.image_id
        if key not in captions:
            raise InputError(f"{path} annotations[{index}]: image_id {key} is not among the images")
        captions[key].append(annotation.caption)
    for key, (index, image) in images.items():
        yield (
            f"images[{index}]",
            ImageRecord(
                id=key,
                image=resolve_image(image.file_name, base),
                captions=clean_captions(captions[key]),
                metadata={"file_name": image.file_name, **(image.model_extra or {})},
            ),
        )
