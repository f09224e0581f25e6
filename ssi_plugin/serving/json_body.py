"""Request bodies read as JSON, with the endpoint's refusal for text that is not JSON or that Python cannot read."""

from __future__ import annotations

import json
from typing import Any

from ssi_plugin.serving.engine_errors import SearchRequestError


def parse_json(text: bytes, *, where: str) -> Any:
    """``text`` as a JSON value; ``SearchRequestError`` (400) led by ``where`` otherwise.

    Python's parser stops at its recursion limit (about 1,000 levels of nesting) with a ``RecursionError``: that
    is a refusal too, as the engine refuses such bodies, not a crash of the endpoint.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise SearchRequestError(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:
        raise SearchRequestError(f"{where}: malformed JSON: {exc}") from None
