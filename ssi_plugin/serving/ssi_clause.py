"""The ``ssi`` query clause: ``{"query": {"ssi": {"query": "a dog catching a frisbee", ...}}}``.

Only a clause that is the whole ``query`` of a search body is rewritten; anywhere
else the engine sees it and answers with its own ``unknown query [ssi]`` error.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from ssi_plugin.search.options import SSIQuery
from ssi_plugin.serving.engine_errors import SearchRequestError


def find_ssi_clause(body: Any) -> SSIQuery | None:
    """The validated clause when ``body`` is an ``ssi`` search, ``None`` for any other body.

    Raises ``SearchRequestError`` (400, ``parsing_exception``) naming what is wrong with the clause.
    """
    if not isinstance(body, dict):
        return None
    query = body.get("query")
    if not isinstance(query, dict) or "ssi" not in query:
        return None
    if len(query) != 1:
        others = ", ".join(sorted(k for k in query if k != "ssi"))
        raise SearchRequestError(f"[ssi] must be the only clause of [query], found also [{others}]")
    options = query["ssi"]
    if not isinstance(options, dict):
        raise SearchRequestError('[ssi] query must be an object, e.g. {"ssi": {"query": "a dog catching a frisbee"}}')
    try:
        return SSIQuery.model_validate(options)
    except ValidationError as exc:
        raise SearchRequestError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field = ".".join(map(str, error["loc"])) or "ssi"
        if error["type"] == "extra_forbidden":
            problems.append(f"[ssi] query does not support [{field}]")
        elif error["type"] == "missing":
            problems.append(f"[ssi] requires [{field}]")
        else:
            problems.append(f"[ssi] [{field}] {error['msg'].lower()}")
    return "; ".join(problems)
