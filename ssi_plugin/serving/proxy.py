"""The standard search API with ``ssi`` queries: an ASGI app in front of a cluster.

Every request goes to the cluster unchanged (method, path, query string, body and
end-to-end headers, Authorization included) and the cluster's answer comes back
with its status and headers; bodies the endpoint does not read stream both ways,
without a size limit (``passthrough``). The exceptions are ``_search`` /
``_msearch`` bodies whose ``query`` is an ``ssi`` clause: those are answered by an
injected searcher, and an ``_msearch`` mixing both kinds sends the other searches
to the cluster in one ``_msearch`` and merges the answers in order. The search
API's URL options apply to those answers as they do on the engine: ``size``,
``from`` and ``_source``/``_source_includes``/``_source_excludes`` become part of
the body the searcher runs on the cluster, ``filter_path`` filters the answer,
and a body may come as ``?source=...&source_content_type=application/json``.
Errors the endpoint makes itself keep the engine's error shape.

    proxy = SearchProxy(ProxySettings(upstream="http://localhost:9200"), ssi_search)
    serve_forever(proxy.app, host="127.0.0.1", port=8080)      # ssi_plugin.serving.server
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, unquote_plus

import anyio
import httpx
from pydantic import BaseModel, ByteSize, ConfigDict, Field, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ssi_plugin.engine import caller_headers
from ssi_plugin.errors import SSIError
from ssi_plugin.serving.engine_errors import SearchRequestError, error_body, error_for, refusal_body
from ssi_plugin.serving.filter_path import filter_response
from ssi_plugin.serving.json_body import parse_json
from ssi_plugin.serving.msearch import (
    MsearchItem,
    merge_responses,
    parse_msearch,
    passthrough_payload,
)
from ssi_plugin.serving.passthrough import end_to_end, relayed, request_content
from ssi_plugin.serving.search_page import SearchPage
from ssi_plugin.serving.ssi_clause import find_ssi_search

SSISearch = Callable[
    [str, dict[str, Any], Mapping[str, str]],
    Mapping[str, Any] | Awaitable[Mapping[str, Any]],
]
"""``ssi_search(index, body, headers)``: a standard search response for a body whose query is an ``ssi`` clause.

``body`` is the whole search body (``size``, ``from`` and ``_source`` included);
``headers`` are the client's ``CALLER_HEADERS`` (lower-case names): the searcher's
calls to the cluster for this search carry them, and no credentials of its own
(``IndexSearchers`` does so). A sync callable runs in a worker thread. Raise an
``SSIError`` to refuse: it reaches the client in the engine's error shape.
"""

HEALTH_PATH = "/_ssi/health"
"""The endpoint's own page: each searcher's trie, how many identifiers it holds and how stale it is."""

_SEARCH_PATH = re.compile(rb"^/(?:(?P<index>[^/]+)/)?_(?P<kind>m?search)/?$")
_METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
_COMPATIBLE_WITH = re.compile(r"application/vnd\.elasticsearch\+json\s*;\s*compatible-with\s*=\s*(\d+)", re.IGNORECASE)

log = logging.getLogger(__name__)


class ProxySettings(BaseModel):
    """How the endpoint reaches the cluster and what it accepts from clients."""

    model_config = ConfigDict(extra="forbid")

    upstream: str = Field(description="Cluster URL every request is forwarded to.")
    max_body_size: ByteSize = Field(
        default=ByteSize(10 * 1024 * 1024),
        gt=0,
        description="Largest search body (_search, _msearch) the endpoint reads itself (413 above); "
        "other bodies stream to the cluster whatever their size.",
    )
    connect_timeout: float = Field(default=3.0, gt=0)
    request_timeout: float = Field(default=60.0, gt=0)
    verify_certs: bool = True
    ca_certs: Path | None = None
    max_connections: int = Field(default=100, ge=1, description="Pooled connections to the cluster.")
    ssi_concurrency: int = Field(default=32, ge=1, description="ssi searches answered at the same time; those that "
                                 "wait for the generator together decode as one batch (at most 32, its MAX_BATCH).")
    engine: Literal["opensearch", "elasticsearch"] = Field(
        default="opensearch",
        description="What the cluster runs: filter_path on composed answers follows that engine's rules.",
    )

    @field_validator("upstream")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"upstream URL {url!r} must start with http:// or https://")
        return url


class _EngineJSON(JSONResponse):
    """JSON as the engine writes it: UTF-8, with a lone surrogate (half of a pair: JSON text may hold one, and a refusal
    may quote it back) written as its ``\\uXXXX`` escape instead of failing to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8", "backslashreplace")


class SearchProxy:
    """The endpoint; ``app`` is the ASGI application to serve.

    ``health`` answers ``GET /_ssi/health``: the state of the searchers' tries (what they hold, how current);
    ``page`` adds the search page's routes under ``/_ssi/`` (``search_page``); ``on_shutdown`` releases what the
    searcher holds (its tries' threads, its client) when the server stops the app.
    """

    def __init__(self, settings: ProxySettings, ssi_search: SSISearch, *, health: Callable[[], Mapping[str, Any]] | None = None,
                 page: SearchPage | None = None, on_shutdown: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self._ssi_search = ssi_search
        self._health = health
        self._on_shutdown = on_shutdown
        self._ssi_is_async = inspect.iscoroutinefunction(ssi_search) or inspect.iscoroutinefunction(
            type(ssi_search).__call__
        )
        self._pool: httpx.AsyncHTTPTransport | None = None
        self._timeouts = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout).as_dict()
        self._limiter: anyio.CapacityLimiter | None = None
        self.app = Starlette(
            routes=[Route(HEALTH_PATH, self._health_answer, methods=["GET"]), *(page.routes if page else []),
                    Route("/{path:path}", self._handle, methods=_METHODS)],
            lifespan=self._lifespan,
        )

    async def _health_answer(self, request: Request) -> Response:
        if self._health is None:
            return self._json(request, 404, error_body(404, "ssi_no_health", "this endpoint has no ssi searchers to report on"))
        return self._json(request, 200, dict(await anyio.to_thread.run_sync(self._health)))

    @asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        s = self.settings
        verify: bool | str = str(s.ca_certs) if s.ca_certs and s.verify_certs else s.verify_certs
        limits = httpx.Limits(
            max_connections=s.max_connections,
            max_keepalive_connections=s.max_connections,
        )
        self._limiter = anyio.CapacityLimiter(s.ssi_concurrency)
        try:
            async with httpx.AsyncHTTPTransport(verify=verify, limits=limits) as pool:
                self._pool = pool
                yield
        finally:
            self._pool = None
            if self._on_shutdown is not None:
                self._on_shutdown()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """One request on the pooled connections; the answer's body is left to read or stream.

        httpx's transport rather than its client: a proxy wants no cookie jar, no
        redirect or auth handling, and the client layer costs about 0.3 ms a request.
        """
        assert self._pool is not None, "the app's lifespan has not started"
        request.extensions["timeout"] = self._timeouts
        response = await self._pool.handle_async_request(request)
        response.request = request
        return response

    async def _handle(self, request: Request) -> Response:
        try:
            match = _SEARCH_PATH.match(request.scope.get("raw_path") or request.url.path.encode())
            if match is None:  # nothing here is read: the body streams to the cluster as it arrives
                return await self._forward(request, request_content(request))
            body = await self._read_body(request)
            readable = self._search_text(request, body)
            if readable and readable.strip():
                index = unquote(match["index"].decode()) if match["index"] else "_all"
                if match["kind"] == b"search":
                    parsed = parse_json(readable, where="request body")
                    clause = find_ssi_search(parsed)
                    if clause is not None:
                        return await self._search(request, index, _with_url_options(parsed, request))
                else:
                    items = parse_msearch(readable, default_index=index)
                    if any(item.clause is not None for item in items):
                        return await self._msearch(request, items)
            return await self._forward(request, body)
        except SearchRequestError as exc:
            return self._json(request, exc.status, error_body(exc.status, exc.error_type, exc.reason))
        except httpx.TransportError as exc:
            answer = self._upstream_failure(exc)
            return self._json(request, answer["status"], answer)

    # -- pass-through -----------------------------------------------------------------------------

    async def _forward(self, request: Request, content: bytes | AsyncIterator[bytes]) -> Response:
        """The cluster's answer to the client's request with ``content`` for its body, relayed as it comes."""
        return await relayed(await self._send(self._upstream_request(request, content)))

    def _upstream_request(self, request: Request, content: bytes | AsyncIterator[bytes], *,
                          drop_params: tuple[str, ...] = ()) -> httpx.Request:
        """The client's request addressed to the cluster: same raw path, query string (less ``drop_params``), end-to-end
        headers, and ``content`` for its body: bytes get their length anew, a stream keeps the client's (or goes chunked)."""
        path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        if drop_params:
            query = "&".join(p for p in query.split("&") if unquote_plus(p.partition("=")[0]) not in drop_params)
        url = f"{self.settings.upstream}{path}" + (f"?{query}" if query else "")
        replaced = ("host", "content-length") if isinstance(content, bytes) else ("host",)
        headers = end_to_end(request.headers.raw, also_drop=replaced)
        return httpx.Request(request.method, url, headers=headers, content=content)

    def _upstream_failure(self, exc: httpx.TransportError) -> dict[str, Any]:
        """502 when the cluster cannot be reached, 504 when it was reached but did not answer in time."""
        where = self.settings.upstream
        if _is_timeout(exc):
            return error_body(
                504,
                "ssi_upstream_timeout",
                f"the cluster at {where} did not answer in time ({type(exc).__name__})",
            )
        detail = str(exc) or type(exc).__name__
        return error_body(
            502,
            "ssi_upstream_unreachable",
            f"cannot reach the cluster at {where}: {detail}",
        )

    async def _read_body(self, request: Request) -> bytes:
        """The whole body of a search, or a 413 once it passes the limit (the rest is drained so the client reads the answer)."""
        limit = int(self.settings.max_body_size)
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
        if size > limit:
            raise SearchRequestError(
                f"request body of {size} bytes exceeds the limit of {limit} bytes ({self.settings.max_body_size.human_readable()})",
                status=413,
                error_type="ssi_request_too_large",
            )
        return b"".join(chunks)

    def _search_text(self, request: Request, body: bytes) -> bytes | None:
        """The search body as JSON text to look into, or None when it passes through unread.

        Without a body, the engine reads one from ``?source=`` given with a JSON
        ``source_content_type``; any other combination is left to the engine to
        accept or refuse.
        """
        source = request.query_params.get("source")
        if source is None:
            return self._readable(request, body)
        content_type = request.query_params.get("source_content_type", "").lower()
        return source.encode() if not body and "json" in content_type else None

    def _readable(self, request: Request, body: bytes) -> bytes | None:
        """The body as JSON text to look into, or None when it is not JSON (SMILE, CBOR...): that passes through.

        Clients that compress requests (opensearch-py's ``http_compress``) send gzip;
        it is inflated here only to look inside, and at most to the body size limit.
        """
        content_type = request.headers.get("content-type", "").lower()
        if content_type and "json" not in content_type:
            return None
        encoding = request.headers.get("content-encoding", "identity").lower()
        if encoding == "identity":
            return body
        if encoding not in ("gzip", "deflate"):
            return None
        limit = int(self.settings.max_body_size)
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        try:
            inflated = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            raise SearchRequestError(f"request body is not valid {encoding}: {exc}") from None
        if len(inflated) > limit:
            raise SearchRequestError(
                f"request body inflates beyond the limit of {limit} bytes",
                status=413,
                error_type="ssi_request_too_large",
            )
        return inflated

    # -- ssi searches -----------------------------------------------------------------------------

    async def _search(self, request: Request, index: str, body: dict[str, Any]) -> Response:
        status, answer = await self._answer(index, body, caller_headers(request.headers))
        return self._composed(request, status, answer)

    async def _msearch(self, request: Request, items: list[MsearchItem]) -> Response:
        started = time.perf_counter()
        headers = caller_headers(request.headers)
        upstream_answer: dict[str, Any] = {"responses": []}
        async with anyio.create_task_group() as group:
            payload = passthrough_payload(items)
            if payload:

                async def others() -> None:  # unfiltered: filter_path applies to the merged answer
                    nonlocal upstream_answer
                    upstream_answer = await self._upstream_json(request, payload, drop_params=("filter_path",))

                group.start_soon(others)
            ssi_answers = []
            for item in (i for i in items if i.clause is not None):
                status, answer = await self._answer(item.index, item.body, headers)
                ssi_answers.append({**answer, "status": status})
        if "responses" not in upstream_answer:  # the cluster refused the whole _msearch: pass its error on
            return self._json(request, int(upstream_answer.get("status", 500)), upstream_answer)
        took = round((time.perf_counter() - started) * 1000)
        return self._composed(request, 200, merge_responses(items, ssi_answers, upstream_answer["responses"], took=took))

    def _composed(self, request: Request, status: int, answer: dict[str, Any]) -> JSONResponse:
        """An answer the endpoint composed; ``filter_path`` applies to it as the engine applies it (not to errors)."""
        filter_path = request.query_params.get("filter_path")
        if filter_path is not None and status < 400:
            answer = filter_response(answer, filter_path, keep_empty=self.settings.engine == "elasticsearch")
        return self._json(request, status, answer)

    def _json(self, request: Request, status: int, answer: Mapping[str, Any]) -> JSONResponse:
        """A JSON answer with what the cluster's own answers carry for its clients to accept them.

        Elasticsearch's clients (Python, JavaScript) refuse an answer without ``X-Elastic-Product: Elasticsearch``,
        and ask with ``Accept: application/vnd.elasticsearch+json; compatible-with=N``, which the cluster echoes
        as the answer's content type.
        """
        if self.settings.engine != "elasticsearch":
            return _EngineJSON(dict(answer), status_code=status)
        compatible = _COMPATIBLE_WITH.search(request.headers.get("accept", ""))
        media_type = f"application/vnd.elasticsearch+json;compatible-with={compatible[1]}" if compatible else "application/json"
        return _EngineJSON(dict(answer), status_code=status, media_type=media_type, headers={"X-Elastic-Product": "Elasticsearch"})

    async def _upstream_json(self, request: Request, payload: bytes, *, drop_params: tuple[str, ...] = ()) -> dict[str, Any]:
        try:
            response = await self._send(self._upstream_request(request, payload, drop_params=drop_params))
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx.TransportError as exc:
            return self._upstream_failure(exc)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            reason = f"the cluster answered {response.status_code} without a JSON body"
            answer = (refusal_body(response.status_code, reason) if response.status_code >= 400
                      else error_body(502, "ssi_upstream_exception", reason))
        if response.status_code >= 400 and "status" not in answer:
            answer["status"] = response.status_code
        return answer

    async def _answer(self, index: str, body: dict[str, Any], headers: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
        """Status and body for one ``ssi`` search; failures become engine-shaped errors, never exceptions."""
        assert self._limiter is not None, "the app's lifespan has not started"
        result: Mapping[str, Any] | Awaitable[Mapping[str, Any]]
        try:
            if self._ssi_is_async:
                async with self._limiter:
                    pending = self._ssi_search(index, body, headers)
                    assert isinstance(pending, Awaitable)
                    result = await pending
            else:
                result = await anyio.to_thread.run_sync(self._ssi_search, index, body, headers, limiter=self._limiter)
        except SSIError as exc:
            return error_for(exc)
        except Exception as exc:  # a searcher bug must still answer in the engine's shape, and be logged
            log.exception("ssi search on %s failed", index)
            return 500, error_body(500, "ssi_exception", f"{type(exc).__name__}: {exc}")
        if not isinstance(result, Mapping) or "hits" not in result:
            return 500, error_body(
                500,
                "ssi_exception",
                "the ssi searcher returned no search response (no [hits])",
            )
        return 200, dict(result)


def _is_timeout(exc: httpx.TransportError) -> bool:
    return isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout)


def _with_url_options(body: Any, request: Request) -> dict[str, Any]:
    """``size``, ``from`` and ``_source`` options given in the query string win over the body's, as they do on the engine."""
    options: dict[str, Any] = {}
    source = _url_source(request)
    if source is not None:
        options["_source"] = source
    for name in ("size", "from"):
        value = request.query_params.get(name)
        if value is None:
            continue
        try:
            options[name] = int(value)
        except ValueError:
            raise SearchRequestError(
                f"Failed to parse int parameter [{name}] with value [{value}]",
                error_type="illegal_argument_exception",
            ) from None
    return {**body, **options}


def _url_source(request: Request) -> bool | dict[str, list[str]] | None:
    """The body form of ``_source``/``_source_includes``/``_source_excludes``, read as the engine reads them.

    ``_source`` is ``true``, ``false`` or a list of fields to include;
    ``_source_includes`` replaces that list; ``false`` wins over any list.
    """
    params = request.query_params
    source, includes, excludes = (params.get(n) for n in ("_source", "_source_includes", "_source_excludes"))
    if source is None and includes is None and excludes is None:
        return None
    if source == "false":
        return False
    if source is not None and source != "true" and includes is None:
        includes = source
    if includes is None and excludes is None:
        return True
    return {"includes": _fields(includes), "excludes": _fields(excludes)}


def _fields(names: str | None) -> list[str]:
    return [name for name in (names or "").split(",") if name]
