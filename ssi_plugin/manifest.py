"""Reading the versioned JSON manifest of a folder ssi-plugin wrote (a generator spec, a trie manifest).

One reader, so every folder fails the same way: missing, not JSON or not the
expected fields, or written by a newer version or for another format.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from pydantic import ValidationError

from ssi_plugin.errors import ModelError


class Versioned(Protocol):
    """A pydantic model with the ``format`` and ``format_version`` fields of a manifest."""

    @property
    def format(self) -> str: ...

    @property
    def format_version(self) -> int: ...

    @classmethod
    def model_validate(cls, obj: Any) -> Self: ...


M = TypeVar("M", bound=Versioned)


def load_manifest(model: type[M], path: Path, *, what: str, missing: str, format_name: str, version: int) -> M:
    """``path`` validated as ``model``; a ``ModelError`` naming ``path`` otherwise.

    ``missing`` is the whole message for an absent file (it says what to do);
    ``what`` names the manifest kind in the others ("generator spec").
    """
    if not path.is_file():
        raise ModelError(missing)
    try:
        manifest = model.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, ValidationError) as exc:
        raise ModelError(f"{path} is not a valid {what}: {exc}") from None
    if manifest.format != format_name or manifest.format_version > version:
        raise ModelError(f"{path} is {manifest.format} v{manifest.format_version}; this version reads {format_name} v{version}")
    return manifest
