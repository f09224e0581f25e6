"""``_msearch`` bodies: split the ``ssi`` searches from the others, and merge the answers back in order.

An ``_msearch`` body is NDJSON, a header line and a body line per search. The
pairs without an ``ssi`` clause go to the cluster unchanged, byte for byte, in
one ``_msearch``; the others are answered by the searcher. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ssi_plugin.search.request import SSISearchRequest
from ssi_plugin.serving.engine_errors import SearchRequestError
from ssi_plugin.serving.json_body import parse_json
from ssi_plugin.serving.ssi_clause import find_ssi_search


@dataclass(frozen=True)
class MsearchItem:
    """One search of an ``_msearch`` body, with its original lines kept for pass-through."""

    header_line: bytes
    body_line: bytes
    body: dict[str, Any]
    index: str
    clause: SSISearchRequest | None

    @property
    def ndjson(self) -> bytes:
        return self.header_line + b"\n" + self.body_line + b"\n"


def parse_msearch(payload: bytes, *, default_index: str) -> list[MsearchItem]:
    """The searches of an ``_msearch`` body; ``SearchRequestError`` names the first bad line."""
    lines = payload.split(b"\n")
    if lines and lines[-1].strip():
        raise SearchRequestError(
            "The msearch request must be terminated by a newline [\\n]",
            error_type="illegal_argument_exception",
        )
    items: list[MsearchItem] = []
    number = 0
    while number < len(lines):
        header_line = lines[number]
        number += 1
        if not header_line.strip():
            continue  # the engine skips blank lines between searches
        if number >= len(lines) or not lines[number].strip():
            raise SearchRequestError(f"msearch line {number}: a header without a search body")
        body_line = lines[number]
        number += 1
        header = _json_object(header_line, number - 1)
        body = _json_object(body_line, number)
        items.append(
            MsearchItem(
                header_line=header_line,
                body_line=body_line,
                body=body,
                index=_index_of(header, default_index, number - 1),
                clause=_clause_at(body, number),
            )
        )
    if not items:
        raise SearchRequestError(
            "msearch request holds no searches",
            error_type="action_request_validation_exception",
        )
    return items


def passthrough_payload(items: Iterable[MsearchItem]) -> bytes:
    """The NDJSON of the searches the cluster answers, in their original bytes."""
    return b"".join(item.ndjson for item in items if item.clause is None)


def merge_responses(
    items: Sequence[MsearchItem],
    ssi_responses: Sequence[dict[str, Any]],
    upstream_responses: Sequence[dict[str, Any]],
    *,
    took: int,
) -> dict[str, Any]:
    """One ``_msearch`` answer with every response where its search was."""
    ssi_iter, upstream_iter = iter(ssi_responses), iter(upstream_responses)
    responses = [next(ssi_iter) if item.clause is not None else next(upstream_iter) for item in items]
    return {"took": took, "responses": responses}


def _json_object(line: bytes, number: int) -> dict[str, Any]:
    value = parse_json(line, where=f"msearch line {number}")
    if not isinstance(value, dict):
        raise SearchRequestError(f"msearch line {number}: expected a JSON object, found {type(value).__name__}")
    return value


def _clause_at(body: dict[str, Any], number: int) -> SSISearchRequest | None:
    try:
        return find_ssi_search(body)
    except SearchRequestError as exc:
        raise SearchRequestError(
            f"msearch line {number}: {exc.reason}",
            status=exc.status,
            error_type=exc.error_type,
        ) from None


def _index_of(header: dict[str, Any], default_index: str, number: int) -> str:
    index = header.get("index", default_index)
    if isinstance(index, list):
        index = ",".join(map(str, index))
    index = str(index) if index else default_index
    try:
        index.encode()
    except UnicodeEncodeError:  # half of a surrogate pair (JSON text may hold one): no URL can name that index
        raise SearchRequestError(f"msearch line {number}: [index] is not Unicode text: {index!r}") from None
    return index
