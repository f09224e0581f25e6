"""Write the demo set to a folder: image files taken from scikit-image, scikit-learn and matplotlib, plus a JSONL.

The images are not copied into this repository; they are read from the
installed packages (which ship them for their own examples) when the demo set
is materialized. The captions, written by hand for this project, are in
``captions.json`` beside this module: the first caption of each image is its
metadata caption, the others are paraphrases used as queries.
"""

from __future__ import annotations

import importlib.util
import io
import os
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.datasets import DATASET_FILE, ImageRecord, write_jsonl
from ssi_plugin.errors import ConfigError, ExtraMissing

_CAPTIONS = Path(__file__).with_name("captions.json")
_DISTRIBUTIONS = {"skimage": "scikit-image", "sklearn": "scikit-learn", "matplotlib": "matplotlib"}


class DemoImage(BaseModel):
    """One bundled photograph: where it ships, who made it, and its captions."""

    model_config = ConfigDict(frozen=True)

    id: str
    module: str
    file: str = Field(description="path inside the module's package folder")
    title: str
    credit: str
    licence: str
    captions: tuple[str, ...] = Field(min_length=2)

    def source(self) -> Path:
        """The file inside the installed package (found without importing the package)."""
        dist = _DISTRIBUTIONS.get(self.module, self.module)
        spec = importlib.util.find_spec(self.module)
        if spec is None or not spec.submodule_search_locations:
            raise ExtraMissing(f"demo image {self.id!r} (shipped with {dist})", extra="demo", missing=self.module)
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        if not path.is_file():
            raise ConfigError(f"demo image {self.id!r}: {path} is missing from the installed {dist}")
        return path


class _Manifest(BaseModel):
    version: int
    images: list[DemoImage]


@cache
def demo_images() -> tuple[DemoImage, ...]:
    """The demo photographs in a fixed order."""
    return tuple(_Manifest.model_validate_json(_CAPTIONS.read_bytes()).images)


def materialize_demo_dataset(out_dir: str | os.PathLike[str]) -> Path:
    """Write ``images/`` and ``dataset.jsonl`` into ``out_dir``; returns the dataset file.

    Idempotent: files whose content is already right are left untouched, so a
    second run changes nothing (and costs a few reads).
    """
    out = Path(out_dir).expanduser()
    images = out / "images"
    images.mkdir(parents=True, exist_ok=True)
    records = []
    for entry in demo_images():
        source = entry.source()
        content, suffix = _image_bytes(source)
        target = images / f"{entry.id}{suffix}"
        _write_if_changed(target, content)
        records.append(
            ImageRecord(
                id=entry.id,
                image=str(target),
                captions=entry.captions,
                metadata={
                    "title": entry.title,
                    "credit": entry.credit,
                    "licence": entry.licence,
                    "source": f"{_DISTRIBUTIONS[entry.module]}: {entry.file}",
                },
            )
        )
    dataset = out / DATASET_FILE
    write_jsonl(records, dataset)
    return dataset


def _image_bytes(source: Path) -> tuple[bytes, str]:
    """The file as shipped, except that transparency is flattened onto white (image models expect RGB)."""
    from PIL import Image

    with Image.open(source) as image:
        if "A" not in image.getbands() and image.mode != "P":
            return source.read_bytes(), source.suffix.lower()
        rgba = image.convert("RGBA")
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    buffer = io.BytesIO()
    flat.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def _write_if_changed(path: Path, content: bytes) -> None:
    if path.is_file() and path.read_bytes() == content:
        return
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(content)
    os.replace(partial, path)
