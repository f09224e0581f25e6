"""One small interface over opensearch-py and elasticsearch-py.

Everything ssi-plugin asks of a cluster goes through ``EngineClient``: a JSON
``request`` for the REST API both engines share, and ``bulk`` on top of each
client's own streaming bulk helper (per-item results, 429 retried with
backoff). Errors of either client become ``ssi_plugin.errors`` types.

A search made for someone else (a client of ``ssi-plugin serve``) carries that
caller's credentials and none of the client's own: what the cluster lets the
caller read decides the answer, and a caller without credentials is refused
whatever the server itself may read.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from pydantic import BaseModel

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine.probe import ClusterInfo, auth_headers, probe
from ssi_plugin.errors import EngineAuthError, EngineRequestError, EngineUnreachable

CALLER_HEADERS = frozenset({"authorization", "cookie", "es-security-runas-user", "opendistro_security_impersonate_as",
                            "x-opaque-id"})
"""The headers of a caller's request that a search made for it carries: who the caller is (Basic, Bearer or ApiKey
``Authorization``, a session cookie, the user it runs as) and its trace id. Lower-case names."""


def caller_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``CALLER_HEADERS`` among a caller's request headers, with lower-case names."""
    return {name.lower(): value for name, value in headers.items() if name.lower() in CALLER_HEADERS}


class BulkItemResult(BaseModel):
    """The engine's verdict on one bulk action."""

    ok: bool
    op: str
    id: str | None
    index: str | None
    status: int
    error: Any = None


class _Transport(Protocol):
    def perform(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any: ...
    def streaming_bulk(self, actions: Iterable[dict[str, Any]], **options: Any) -> Iterator[tuple[bool, dict[str, Any]]]: ...
    def msearch(self, index: str, lines: list[Mapping[str, Any]], headers: Mapping[str, str]) -> Any: ...
    def close(self) -> None: ...


class EngineClient:
    """A connected cluster. Build it with :func:`connect`."""

    def __init__(self, info: ClusterInfo, transport: _Transport, settings: EngineSettings) -> None:
        self.info = info
        self._transport = transport
        self._settings = settings
        self._callers_transport: _Transport | None = None
        self._callers_lock = threading.Lock()

    @property
    def kind(self) -> str:
        return self.info.kind

    @property
    def url(self) -> str:
        return self.info.url

    def request(self, method: str, path: str, *, body: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Send one REST call; the decoded JSON answer, or an ``EngineRequestError``."""
        try:
            return self._transport.perform(method, path, params, body)
        except _client_errors() as exc:
            raise _translate(exc, method, path, self.url) from None

    def exists(self, path: str) -> bool:
        """True when ``HEAD path`` answers 2xx (an index, alias, template...)."""
        return bool(self.request("HEAD", path))

    def search(self, index: str, body: Mapping[str, Any], *, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("POST", f"/{index}/_search", body=dict(body), params=params)

    def msearch(
        self, index: str, bodies: list[Mapping[str, Any]], *, headers: Mapping[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """Run several searches on ``index`` in one round trip; one response (or error object) per body.

        ``headers`` make it a search for a caller: it carries the caller's ``CALLER_HEADERS`` found in them and
        none of this client's credentials, so a caller without credentials (even ``{}``) reaches the cluster
        without any, and its 401/403 is an ``EngineRequestError`` about the caller. None: this client's own search.
        """
        lines: list[Mapping[str, Any]] = []
        for body in bodies:
            lines += [{}, body]
        for_caller = headers is not None
        transport = self._for_callers() if for_caller else self._transport
        try:
            return transport.msearch(index, lines, caller_headers(headers or {}))["responses"]
        except _client_errors() as exc:
            raise _translate(exc, "POST", f"/{index}/_msearch", self.url, for_caller=for_caller) from None

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": dict(query)} if query else None
        return int(self.request("POST", f"/{index}/_count", body=body)["count"])

    def refresh(self, index: str) -> None:
        self.request("POST", f"/{index}/_refresh")

    def bulk(
        self,
        actions: Iterable[dict[str, Any]],
        *,
        pipeline: str | None = None,
        chunk_size: int = 500,
        max_retries: int = 5,
        initial_backoff: float = 1.0,
        max_backoff: float = 30.0,
        refresh: bool = False,
    ) -> Iterator[BulkItemResult]:
        """Stream actions to ``_bulk``; yield one result per action.

        Actions use the helpers' format (``_op_type``, ``_index``, ``_id``, ``_source``).
        Items rejected with 429 are resent with capped exponential backoff; other
        per-item failures are yielded, never raised, so the caller records them.
        Lazy: nothing is sent until the result is iterated.
        """
        options: dict[str, Any] = {
            "chunk_size": chunk_size,
            "max_retries": max_retries,
            "initial_backoff": initial_backoff,
            "max_backoff": max_backoff,
            "raise_on_error": False,
            "raise_on_exception": True,
        }
        if pipeline:
            options["pipeline"] = pipeline
        if refresh:
            options["refresh"] = "true"
        try:
            for ok, item in self._transport.streaming_bulk(actions, **options):
                op, detail = next(iter(item.items()))
                yield BulkItemResult(
                    ok=ok,
                    op=op,
                    id=detail.get("_id"),
                    index=detail.get("_index"),
                    status=int(detail.get("status", 0)),
                    error=detail.get("error"),
                )
        except _client_errors() as exc:
            raise _translate(exc, "POST", "/_bulk", self.url) from None

    def close(self) -> None:
        self._transport.close()
        if self._callers_transport is not None:
            self._callers_transport.close()

    def _for_callers(self) -> _Transport:
        """The transport of searches made for callers: the same cluster without any credentials of ours (built once)."""
        with self._callers_lock:
            if self._callers_transport is None:
                anonymous = self._settings.model_copy(update={"api_key": None, "username": None, "password": None})
                self._callers_transport = _transport_for(self.info, anonymous)
            return self._callers_transport

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(settings: EngineSettings, *, progress: Callable[[str], None] | None = None) -> EngineClient:
    """Connect to the configured cluster, or to the local engine when no URL is set: the local cluster while one is set up
    (``engine start --nodes N``), else the embedded single node; either is started when it does not run."""
    if settings.url is None:
        from ssi_plugin.engine.local_cluster import local_engine

        status = local_engine(settings.cache_dir).ensure_running(progress=progress)
        settings = settings.model_copy(update={"url": status.url})
    info = probe(settings)
    return EngineClient(info, _transport_for(info, settings), settings)


CONNECTIONS_PER_NODE = 64
"""Connections kept open to each node. ``serve`` answers up to 32 ssi queries at once (``ProxySettings.ssi_concurrency``),
each an ``_msearch``, beside the tries' reads: a smaller pool (opensearch-py keeps one, elasticsearch-py ten) opens and
closes a connection for nearly every search, which cost serve and the engine about 3 ms of CPU per query."""


def _transport_for(info: ClusterInfo, settings: EngineSettings) -> _Transport:
    return _OpenSearchTransport(settings) if info.kind == "opensearch" else _ElasticsearchTransport(settings)


class _OpenSearchTransport:
    def __init__(self, settings: EngineSettings) -> None:
        from opensearchpy import OpenSearch

        assert settings.url is not None
        self._client = OpenSearch(
            hosts=[settings.url],
            http_auth=(settings.username, settings.password or "") if settings.username else None,
            headers=auth_headers(settings),
            verify_certs=settings.verify_certs,
            ssl_show_warn=settings.verify_certs,
            ca_certs=str(settings.ca_certs) if settings.ca_certs else None,
            timeout=settings.request_timeout,
            pool_maxsize=CONNECTIONS_PER_NODE,
        )

    def perform(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any:
        # HEAD answers a bool here, as in elasticsearch-py's transport below.
        return self._client.transport.perform_request(method, path, params=params, body=body)

    def streaming_bulk(self, actions: Iterable[dict[str, Any]], **options: Any) -> Iterator[tuple[bool, dict[str, Any]]]:
        from opensearchpy.helpers import streaming_bulk

        return streaming_bulk(self._client, actions, **options)

    def msearch(self, index: str, lines: list[Mapping[str, Any]], headers: Mapping[str, str]) -> Any:
        return self._client.msearch(body=lines, index=index, headers=dict(headers) or None)

    def close(self) -> None:
        self._client.close()


_JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}


class _ElasticsearchTransport:

    def __init__(self, settings: EngineSettings) -> None:
        from elastic_transport.client_utils import DEFAULT
        from elasticsearch import Elasticsearch

        assert settings.url is not None
        self._client = Elasticsearch(
            settings.url,
            api_key=settings.api_key,
            basic_auth=(settings.username, settings.password or "") if settings.username else None,
            verify_certs=settings.verify_certs,
            ssl_show_warn=settings.verify_certs,
            ca_certs=str(settings.ca_certs) if settings.ca_certs else DEFAULT,
            request_timeout=settings.request_timeout,
            connections_per_node=CONNECTIONS_PER_NODE,
        )

    def perform(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> Any:
        headers = _JSON_HEADERS if body is not None else {"accept": "application/json"}
        response = self._client.perform_request(method, path, params=params, headers=headers, body=body)
        return bool(response) if method == "HEAD" else response.body

    def streaming_bulk(self, actions: Iterable[dict[str, Any]], **options: Any) -> Iterator[tuple[bool, dict[str, Any]]]:
        from elasticsearch.helpers import streaming_bulk

        yield from streaming_bulk(self._client, actions, **options)

    def msearch(self, index: str, lines: list[Mapping[str, Any]], headers: Mapping[str, str]) -> Any:
        client = self._client.options(headers=dict(headers)) if headers else self._client
        return client.msearch(searches=lines, index=index).body

    def close(self) -> None:
        self._client.close()


@functools.cache
def _client_errors() -> tuple[type[Exception], ...]:
    """Both clients' base errors; imported on the first failure, so that importing this module loads neither client."""
    import elastic_transport
    import elasticsearch
    import opensearchpy

    return (opensearchpy.exceptions.OpenSearchException, elasticsearch.ApiError, elastic_transport.TransportError)


_CALLER_REFUSED = {401: "the caller's credentials were rejected", 403: "the caller's credentials lack permission"}


def _translate(exc: Exception, method: str, path: str, url: str, *, for_caller: bool = False) -> Exception:
    """Map either client's exception to ours, keeping status and the engine's reason.

    A 401/403 is an ``EngineAuthError`` (check our settings), or an ``EngineRequestError`` about the caller's
    credentials when the request was made ``for_caller``.
    """
    import elastic_transport
    import elasticsearch
    import opensearchpy

    if isinstance(exc, (opensearchpy.exceptions.ConnectionError, elastic_transport.TransportError)):
        return EngineUnreachable(url, str(getattr(exc, "info", None) or exc))
    if isinstance(exc, elasticsearch.ApiError):
        status, body = exc.meta.status, exc.body
    elif isinstance(exc, opensearchpy.exceptions.TransportError) and isinstance(exc.status_code, int):
        status, body = exc.status_code, exc.info
    else:
        return EngineRequestError(method, path, 0, str(exc))
    if status in (401, 403) and for_caller:
        has_error = isinstance(body, dict) and body.get("error")
        return EngineRequestError(method, path, status, _reason(body) if has_error else _CALLER_REFUSED[status], body)
    if status in (401, 403):
        return EngineAuthError(url, status)
    return EngineRequestError(method, path, status, _reason(body), body)


def _reason(body: Any) -> str:
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            causes = error.get("root_cause") or []
            first = causes[0] if causes and isinstance(causes[0], dict) else error
            reason = f"{first.get('type', 'error')}: {first.get('reason', error.get('reason', ''))}".strip()
            cause = error.get("caused_by")
            if isinstance(cause, dict) and cause.get("reason"):
                reason += f" (caused by {cause.get('type', 'error')}: {cause['reason']})"
            return reason
        if error:
            return str(error)
    return str(body)[:500]
