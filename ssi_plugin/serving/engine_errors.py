"""Errors in the engine's own shape, so clients parse the endpoint's refusals as they parse the cluster's.

The engine answers ``{"error": {"root_cause": [...], "type", "reason"}, "status"}``;
opensearch-py, elasticsearch-py and the JavaScript clients turn that into their own
typed exceptions. Every error the endpoint makes itself uses the same shape.
"""

from __future__ import annotations

from typing import Any

from ssi_plugin.errors import (
    EngineAuthError,
    EngineRequestError,
    EngineUnreachable,
    InputError,
    ModelError,
    SSIError,
)


class SearchRequestError(InputError):
    """A request the endpoint refuses itself; ``status`` and ``error_type`` are what the client receives."""

    def __init__(self, reason: str, *, status: int = 400, error_type: str = "parsing_exception") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.error_type = error_type


def error_body(status: int, error_type: str, reason: str) -> dict[str, Any]:
    """The engine's error document."""
    cause = {"type": error_type, "reason": reason}
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def refusal_body(status: int, reason: str) -> dict[str, Any]:
    """The engine's error document for a refusal by the cluster that came without one (a proxy's HTML 401 page, say)."""
    return error_body(status, "security_exception" if status in (401, 403) else "ssi_engine_exception", reason)


def error_for(exc: SSIError) -> tuple[int, dict[str, Any]]:
    """Status and engine-shaped body for an error raised while answering an ``ssi`` query."""
    if isinstance(exc, SearchRequestError):
        return exc.status, error_body(exc.status, exc.error_type, exc.reason)
    if isinstance(exc, EngineRequestError):
        if isinstance(exc.body, dict) and isinstance(exc.body.get("error"), dict):
            return exc.status, {**exc.body, "status": exc.status}
        return exc.status, refusal_body(exc.status, exc.reason)
    if isinstance(exc, EngineAuthError):
        return exc.status, error_body(exc.status, "security_exception", str(exc))
    if isinstance(exc, EngineUnreachable):
        return 502, error_body(502, "ssi_upstream_unreachable", str(exc))
    if isinstance(exc, InputError):
        return 400, error_body(400, "illegal_argument_exception", str(exc))
    if isinstance(exc, ModelError):
        return 500, error_body(500, "ssi_model_exception", str(exc))
    return 500, error_body(500, "ssi_exception", f"{type(exc).__name__}: {exc}")
