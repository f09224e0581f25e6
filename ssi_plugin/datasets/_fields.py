"""Small helpers every format reader shares: caption clean-up and readable validation errors."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError


def clean_captions(captions: Iterable[str]) -> tuple[str, ...]:
    """Captions with surrounding whitespace removed; blank ones dropped (they cannot be queries)."""
    return tuple(text for text in (c.strip() for c in captions) if text)


def describe(exc: ValidationError) -> str:
    """One line per problem, ``field.path: message``, without pydantic's URLs."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {error['msg']}" if where else error["msg"])
    return "; ".join(parts)
