"""One entry point for every dataset format: detect it, read it, check what holds across formats.

Records are yielded lazily (a 100k-line JSONL is never held in memory), but
everything that can be checked up front is: the file exists, its format is
known, a JSON file parses. Within the stream, a malformed entry stops reading
with an ``InputError`` naming the file and the line or entry; a record that
lacks its image or its captions is yielded as it is, because that is a
per-record failure the annotator records and counts, not a broken file.
Identifiers must be unique within a dataset.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal, get_args

from ssi_plugin.datasets.coco import is_coco, iter_coco
from ssi_plugin.datasets.jsonl import iter_jsonl
from ssi_plugin.datasets.karpathy import is_karpathy, iter_karpathy
from ssi_plugin.datasets.records import ImageRecord
from ssi_plugin.errors import InputError

DatasetFormat = Literal["jsonl", "karpathy", "coco"]
DATASET_FILE = "dataset.jsonl"
"""The file a dataset folder is read from (what the demo and synthetic generators write)."""

_JSONL_SUFFIXES = (".jsonl", ".ndjson")


def dataset_file(path: str | os.PathLike[str]) -> Path:
    """The dataset file ``path`` names; a folder stands for the ``dataset.jsonl`` inside it."""
    path = Path(path).expanduser()
    if path.is_dir():
        inner = path / DATASET_FILE
        if not inner.is_file():
            raise InputError(f"{path} is a folder without {DATASET_FILE}; give the dataset file itself")
        return inner
    if not path.is_file():
        raise InputError(f"dataset {path} does not exist")
    return path


def read_dataset(
    path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    split: str | Iterable[str] | None = None,
    format: DatasetFormat | None = None,
) -> Iterator[ImageRecord]:
    """Records of a JSONL, Karpathy-split or COCO captions dataset.

    Args:
        path: the dataset file, or a folder holding ``dataset.jsonl``.
        images_dir: where relative image paths point; default: the dataset file's folder.
        split: keep only records whose ``split`` is this one (or one of these), e.g. ``"test"``.
            Asking for a split that no record has is an error, not an empty dataset.
        format: ``"jsonl"``, ``"karpathy"`` or ``"coco"``; detected from the file when unset.

    Raises:
        InputError: a missing or unreadable file, an unknown format, a malformed entry
            (naming its line or entry), or an identifier used twice.
    """
    file = dataset_file(path)
    folder = None
    if images_dir is not None:
        folder = Path(images_dir).expanduser()
        if not folder.is_dir():
            raise InputError(f"image folder {folder} does not exist")
    if format is not None and format not in get_args(DatasetFormat):
        raise InputError(f"unknown dataset format {format!r}; choose one of {', '.join(get_args(DatasetFormat))}")
    if format == "jsonl" or (format is None and file.suffix.lower() in _JSONL_SUFFIXES):
        entries = iter_jsonl(file, images_dir=folder)
    else:
        data = _load_json(file)
        kind = format or _json_format(data, file)
        reader = iter_coco if kind == "coco" else iter_karpathy
        entries = reader(data, file, images_dir=folder)
    wanted = None if split is None else frozenset([split] if isinstance(split, str) else split)
    return _checked(entries, file, wanted)


def counted_dataset(
    path: str | os.PathLike[str],
    *,
    images_dir: str | os.PathLike[str] | None = None,
    split: str | Iterable[str] | None = None,
    limit: int | None = None,
) -> tuple[Iterator[ImageRecord], int]:
    """``(records, total)``: the file is read once to count it (for progress and the summary) and once to stream it.

    ``limit`` keeps only the first records; the other arguments are ``read_dataset``'s.
    """
    if limit is not None and limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}")
    total = sum(1 for _ in read_dataset(path, images_dir=images_dir, split=split))
    records = itertools.islice(read_dataset(path, images_dir=images_dir, split=split), limit)
    return records, min(total, limit) if limit else total


def detect_format(path: str | os.PathLike[str]) -> DatasetFormat:
    """The format ``read_dataset`` would read ``path`` as."""
    file = dataset_file(path)
    if file.suffix.lower() in _JSONL_SUFFIXES:
        return "jsonl"
    return _json_format(_load_json(file), file)


def _load_json(file: Path) -> object:
    try:
        with file.open("rb") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        hint = " (one JSON object per line? name the file .jsonl)" if exc.msg == "Extra data" else ""
        raise InputError(f"{file} line {exc.lineno} column {exc.colno}: not valid JSON: {exc.msg}{hint}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {file}: {exc}") from None


def _json_format(data: object, file: Path) -> DatasetFormat:
    if is_coco(data):
        return "coco"
    if is_karpathy(data):
        return "karpathy"
    raise InputError(
        f"{file}: unknown dataset format; expected JSONL (.jsonl), a Karpathy-split JSON "
        '({"images": [...]}) or COCO captions ({"images": [...], "annotations": [...]})'
    )


def _checked(
    entries: Iterator[tuple[str, ImageRecord]], file: Path, wanted: frozenset[str] | None
) -> Iterator[ImageRecord]:
    seen: dict[str, str] = {}
    splits: set[str] = set()
    kept = 0
    for where, record in entries:
        if record.id in seen:
            raise InputError(f"{file} {where}: id {record.id!r} already used at {seen[record.id]}")
        seen[record.id] = where
        if wanted is not None:
            split = record.metadata.get("split")
            if split is None:
                continue
            splits.add(str(split))
            if str(split) not in wanted:
                continue
        kept += 1
        yield record
    if wanted is not None and not kept:
        found = f"splits present: {', '.join(sorted(splits))}" if splits else "no record has a split field"
        raise InputError(f"{file}: no record in split {', '.join(sorted(wanted))} ({found})")
