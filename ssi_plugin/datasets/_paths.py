"""Where a dataset's ``image`` field points: URLs stay as they are, local paths become absolute."""

from __future__ import annotations

import os
import re
from pathlib import Path

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^data:")


def is_url(value: str) -> bool:
    return bool(_URL.match(value))


def resolve_image(value: str, base: Path) -> str:
    """An absolute local path (relative ones are taken from ``base``), or the URL unchanged."""
    if is_url(value):
        return value
    path = Path(value).expanduser()
    return os.path.abspath(path if path.is_absolute() else base / path)


def relative_image(value: str, base: Path) -> str:
    """The inverse for writers: a path under ``base`` becomes relative (POSIX form), so the folder can move."""
    if is_url(value):
        return value
    path = Path(os.path.abspath(value))
    try:
        return path.relative_to(os.path.abspath(base)).as_posix()
    except ValueError:
        return str(path)
