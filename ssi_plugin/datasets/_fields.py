"""Small helpers every format reader shares: caption clean-up and readable validation errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from pydantic import BeforeValidator


def _identifier(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be a string or a whole number")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be blank")
    return text


Identifier = Annotated[str, BeforeValidator(_identifier)]
"""An image id as files write it (string or integer), as the non-blank string records use."""


def clean_captions(captions: Iterable[str]) -> tuple[str, ...]:
    """Captions with surrounding whitespace removed; blank ones dropped (they cannot be queries)."""
    return tuple(text for text in (c.strip() for c in captions) if text)
