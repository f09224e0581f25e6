"""Pass-through: a client's request relayed to the cluster, and the cluster's answer relayed back, both streamed.

A body the endpoint does not read (anything but a search: ``_bulk``, documents,
snapshots...) flows to the cluster chunk by chunk as the client sends it, with
no size limit and flat memory; large answers flow back the same way. Headers go
end to end except the hop-by-hop ones (RFC 9110 §7.6.1), in both directions:
they describe one connection, and the endpoint's connections are its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Headers for one connection only (lower-case); those a ``Connection`` header names are too."""

WHOLE_ANSWER_BYTES = 256 * 1024
"""Answers up to this size are relayed whole: streaming costs a task per answer, about 0.4 ms of CPU."""

RawHeaders = list[tuple[bytes, bytes]]


def end_to_end(headers: Iterable[tuple[bytes, bytes]], *, also_drop: Iterable[str] = ()) -> RawHeaders:
    """``headers`` (raw name/value pairs) less the hop-by-hop ones, those ``Connection`` names and ``also_drop``.

    Names come out lower-case, values as they came.
    """
    pairs = [(name.lower(), value) for name, value in headers]
    named = {token.strip().lower() for name, value in pairs if name == b"connection"
             for token in value.decode("latin-1").split(",")}
    dropped = HOP_BY_HOP | named | {name.lower() for name in also_drop}
    return [(name, value) for name, value in pairs if name.decode("latin-1") not in dropped]


def request_content(request: Request) -> bytes | AsyncIterator[bytes]:
    """The client's body as it arrives, unread; ``b""`` for a request without one (so none is announced upstream)."""
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    return request.stream() if has_body else b""


async def relayed(upstream: httpx.Response) -> Response:
    """The cluster's answer as it came (raw bytes, still compressed if it was): small ones whole, others streamed."""
    length = upstream.headers.get("content-length", "")
    response: Response
    if length.isdigit() and int(length) <= WHOLE_ANSWER_BYTES:
        try:
            content = b"".join([chunk async for chunk in upstream.aiter_raw()])
        finally:
            await upstream.aclose()
        response = Response(content, status_code=upstream.status_code)
    else:
        response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code,
                                     background=BackgroundTask(upstream.aclose))
    response.raw_headers = end_to_end(upstream.headers.raw)
    return response
