"""Find out what answers at a URL before any client is built.

elasticsearch-py refuses servers that are not Elasticsearch and opensearch-py
does not check at all, so the product and version are read here, with a short
connect timeout, and a wrong URL or bad credentials surface in seconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

from ssi_plugin.config import EngineKind, EngineSettings
from ssi_plugin.errors import (
    ConfigError,
    EngineAuthError,
    EngineUnreachable,
    UnsupportedEngine,
)

if TYPE_CHECKING:
    import httpx  # imported where a request is made: the local node's commands never load it

SUPPORTED_MAJORS: dict[str, tuple[int, ...]] = {"opensearch": (2, 3), "elasticsearch": (9,)}


class ClusterInfo(BaseModel):
    url: str
    kind: EngineKind
    version: str

    @property
    def major(self) -> int:
        return int(self.version.split(".", 1)[0])


def auth_headers(settings: EngineSettings) -> dict[str, str]:
    return {"Authorization": f"ApiKey {settings.api_key}"} if settings.api_key else {}


def _http_client(settings: EngineSettings) -> httpx.Client:
    import httpx

    verify: bool | str = str(settings.ca_certs) if settings.ca_certs and settings.verify_certs else settings.verify_certs
    auth = (settings.username, settings.password or "") if settings.username else None
    timeout = httpx.Timeout(settings.request_timeout, connect=settings.connect_timeout)
    return httpx.Client(verify=verify, auth=auth, headers=auth_headers(settings), timeout=timeout)


def probe(settings: EngineSettings) -> ClusterInfo:
    """Identify the cluster at ``settings.url``; raise a clear error for anything unusable."""
    import httpx

    url = settings.url
    if url is None:
        raise ConfigError("no cluster URL to probe")
    try:
        with _http_client(settings) as http:
            root = http.get(url + "/")
            _raise_for_auth(url, root)
            kind, version = _identify(root)
            if kind == "elasticsearch" and version is None:
                # A core Elasticsearch node without the module that serves GET /.
                nodes = http.get(url + "/_nodes/_local", params={"filter_path": "nodes.*.version"})
                _raise_for_auth(url, nodes)
                version = next((node.get("version") for node in nodes.json().get("nodes", {}).values()), None)
    except httpx.TimeoutException:
        raise EngineUnreachable(url, f"no answer within {settings.connect_timeout:g} s") from None
    except httpx.TransportError as exc:
        raise EngineUnreachable(url, _transport_reason(exc)) from None
    if version is None:
        raise UnsupportedEngine(f"{url} did not report its version")
    info = ClusterInfo(url=url, kind=kind, version=version)
    if info.major not in SUPPORTED_MAJORS[kind]:
        majors = ", ".join(f"{m}.x" for m in SUPPORTED_MAJORS[kind])
        raise UnsupportedEngine(f"{url} runs {kind} {version}; ssi-plugin supports {kind} {majors}")
    if settings.engine is not None and settings.engine != kind:
        raise ConfigError(f"--engine {settings.engine} was asked for, but {url} runs {kind} {version}")
    return info


def _raise_for_auth(url: str, response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise EngineAuthError(url, response.status_code)


def _identify(root: httpx.Response) -> tuple[EngineKind, str | None]:
    try:
        body = root.json() if root.status_code == 200 else {}
    except ValueError:
        body = {}
    version = body.get("version", {}) if isinstance(body, dict) else {}
    if version.get("distribution") == "opensearch":
        return "opensearch", version.get("number")
    if root.headers.get("x-elastic-product") == "Elasticsearch":
        return "elasticsearch", version.get("number")
    raise UnsupportedEngine(
        f"{root.url} answered HTTP {root.status_code} but is neither OpenSearch nor Elasticsearch"
    )


def _transport_reason(exc: httpx.TransportError) -> str:
    import httpx

    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError) and "Connection refused" in f"{text} {cause}":
        return "connection refused"
    return text
