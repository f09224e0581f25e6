"""Which search bodies are ``ssi`` searches: ``{"query": {"ssi": {...}}}``, or an ``ssi`` clause as the scoring
clause of a ``bool`` query (``ssi_plugin.search.request`` reads the whole body).

Any other body passes through; an ``ssi`` clause anywhere else reaches the engine, which answers with its own
``unknown query [ssi]`` error.
"""

from __future__ import annotations

from typing import Any

from ssi_plugin.errors import InputError
from ssi_plugin.search.request import SSISearchRequest
from ssi_plugin.serving.engine_errors import SearchRequestError


def find_ssi_search(body: Any) -> SSISearchRequest | None:
    """The request when ``body`` is an ``ssi`` search, ``None`` for any other body.

    Raises ``SearchRequestError`` (400, ``parsing_exception``) naming what is wrong or not supported.
    """
    if not isinstance(body, dict):
        return None
    try:
        return SSISearchRequest.from_body(body)
    except InputError as exc:
        raise SearchRequestError(str(exc)) from None
