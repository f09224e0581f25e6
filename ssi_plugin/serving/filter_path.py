"""The engine's ``filter_path`` response filter, for the answers the endpoint composes itself.

Answers the cluster gives pass through already filtered; an ``ssi`` search's
answer (and an ``_msearch`` merged here) is built by the endpoint, so the same
filter runs here, with the engine's rules (its ``FilterPathBasedFilter``):

- comma-separated paths of dot-separated field names (``\\.`` is a literal dot);
  ``*`` inside a name matches any characters, ``**`` any number of levels;
  arrays are transparent: a path goes on into every object of an array;
- paths starting with ``-`` exclude; includes apply first, then excludes;
- an object or array that a path goes into and that ends up empty disappears
  (the whole answer becomes ``{}``); under excludes, one that was empty to begin
  with stays on Elasticsearch and disappears on OpenSearch (``keep_empty``).

No library does this (JSONPath and glom-style paths differ on arrays and ``**``),
and every rule above is checked against the engine's own output in the tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

_DROP = object()
"""A value that filtering removed whole."""


@dataclass(frozen=True)
class _Step:
    """A position inside one path: the segments still to match."""

    segments: tuple[str, ...]
    at: int = 0

    def after(self, name: str) -> _Step | None:
        """Where the path goes on when ``name`` matches its current segment, else ``None``."""
        segment = self.segments[self.at]
        if segment in ("*", "**") or _glob(segment).fullmatch(name):
            return _Step(self.segments, self.at + 1)
        return None

    @property
    def done(self) -> bool:
        return self.at == len(self.segments)

    @property
    def any_depth(self) -> bool:
        return self.segments[self.at] == "**"


def filter_response(document: dict[str, Any], filter_path: str, *, keep_empty: bool = False) -> dict[str, Any]:
    """``document`` as the engine would write it under ``?filter_path=...``; ``keep_empty`` for Elasticsearch's rule."""
    paths = [p.strip() for p in filter_path.split(",") if p.strip()]
    includes = [_parse(p) for p in paths if not p.startswith("-")]
    excludes = [_parse(p[1:]) for p in paths if p.startswith("-")]
    result: Any = document
    if includes:
        result = _filter(result, includes, inclusive=True)
    if excludes and result is not _DROP:
        result = _filter(result, excludes, inclusive=False, keep_empty=keep_empty)
    return {} if result is _DROP else result


def _filter(value: Any, steps: list[_Step], *, inclusive: bool, keep_empty: bool = False) -> Any:
    """``value`` under the paths at ``steps``: what stays, or ``_DROP``."""
    if keep_empty and not value and isinstance(value, dict | list):
        return value
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for name, child in value.items():
            verdict = _evaluate(name, steps)
            if isinstance(verdict, list):
                filtered = _filter(child, verdict, inclusive=inclusive, keep_empty=keep_empty)
                if filtered is not _DROP:
                    kept[name] = filtered
            elif verdict == inclusive:  # a path ends here and includes, or none goes here and excludes
                kept[name] = child
        return kept or _DROP
    if isinstance(value, list):
        items = [_filter(item, steps, inclusive=inclusive, keep_empty=keep_empty) for item in value]
        return [item for item in items if item is not _DROP] or _DROP
    return _DROP if inclusive else value


def _evaluate(name: str, steps: list[_Step]) -> bool | list[_Step]:
    """True when a path ends at ``name``, False when none goes through it, else the paths going on below it."""
    going_on: list[_Step] = []
    for step in steps:
        nxt = step.after(name)
        if nxt is None:
            continue
        if nxt.done:
            return True
        if step.any_depth:
            going_on.append(step)
        going_on.append(nxt)
    return going_on or False


def _parse(path: str) -> _Step:
    segments = [s.replace("\\.", ".") for s in re.split(r"(?<!\\)\.", path)]
    return _Step(tuple(segments))


@cache
def _glob(segment: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in segment.split("*")))
