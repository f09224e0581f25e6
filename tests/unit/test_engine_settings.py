"""Settings resolve flag > environment > default; a bad cluster is named in seconds."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import connect, probe
from ssi_plugin.errors import ConfigError, EngineAuthError, EngineUnreachable, UnsupportedEngine


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL", "SSI_API_KEY", "SSI_VERIFY_CERTS"):
        monkeypatch.delenv(name, raising=False)


def test_ssi_url_wins_over_engine_specific_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENSEARCH_URL", "http://opensearch:9200")
    assert EngineSettings().url == "http://opensearch:9200"
    monkeypatch.setenv("ELASTICSEARCH_URL", "http://elastic:9200/")
    assert EngineSettings().url == "http://elastic:9200"
    monkeypatch.setenv("SSI_ENGINE_URL", "https://ssi:9200")
    assert EngineSettings().url == "https://ssi:9200"
    assert EngineSettings(url="http://flag:1").url == "http://flag:1"


def test_defaults_verify_tls_and_use_the_local_node() -> None:
    settings = EngineSettings()
    assert settings.url is None
    assert settings.verify_certs is True


def test_bad_url_and_missing_ca_file_are_named() -> None:
    with pytest.raises(ValueError, match="must start with http"):
        EngineSettings(url="localhost:9200")
    with pytest.raises(ValueError, match=r"nowhere.pem"):
        EngineSettings(ca_certs="nowhere.pem")


class _FakeServer(http.server.ThreadingHTTPServer):
    """A plain HTTP server that answers every GET and POST with a fixed status, headers and body."""

    def __init__(self, status: int, body: dict, headers: dict[str, str]) -> None:
        reply = (status, json.dumps(body).encode(), headers)
        self.seen: list[dict[str, list[str]]] = []
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.append({name.lower(): self.headers.get_all(name, []) for name in self.headers})
                self.rfile.read(int(self.headers.get("content-length") or 0))
                code, payload, extra = reply
                self.send_response(code)
                for key, value in {"content-type": "application/json", **extra}.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def serve() -> Iterator:
    servers: list[_FakeServer] = []

    def start(status: int, body: dict, headers: dict[str, str] | None = None) -> str:
        server = _FakeServer(status, body, headers or {})
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    start.servers = servers  # type: ignore[attr-defined]

    yield start
    for server in servers:
        server.shutdown()


def test_rejected_credentials_are_reported(serve) -> None:
    url = serve(401, {"error": "unauthorized"})
    with pytest.raises(EngineAuthError, match="401"):
        probe(EngineSettings(url=url, username="elastic", password="wrong"))


def test_a_server_that_is_no_search_engine_is_refused(serve) -> None:
    url = serve(200, {"hello": "world"})
    with pytest.raises(UnsupportedEngine, match="neither OpenSearch nor Elasticsearch"):
        probe(EngineSettings(url=url))


def test_unsupported_versions_and_wrong_engine_choice(serve) -> None:
    old = serve(200, {"version": {"distribution": "opensearch", "number": "1.3.0"}})
    with pytest.raises(UnsupportedEngine, match=r"opensearch 1.3.0"):
        probe(EngineSettings(url=old))
    current = serve(200, {"version": {"distribution": "opensearch", "number": "2.19.1"}})
    assert probe(EngineSettings(url=current)).kind == "opensearch"
    with pytest.raises(ConfigError, match="runs opensearch"):
        probe(EngineSettings(url=current, engine="elasticsearch"))


def test_elasticsearch_core_node_is_recognised_by_its_product_header(serve) -> None:
    url = serve(200, {"version": {"number": "9.1.0"}}, {"X-Elastic-Product": "Elasticsearch"})
    info = probe(EngineSettings(url=url))
    assert (info.kind, info.version) == ("elasticsearch", "9.1.0")


def test_unreachable_cluster_is_named() -> None:
    with pytest.raises(EngineUnreachable, match=r"127\.0\.0\.1:9.*refused"):
        probe(EngineSettings(url="http://127.0.0.1:9"))


def test_cli_reports_bad_settings_in_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ssi_plugin", "--url", "ftp://x", "engine", "status"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["ConfigError: url: engine URL 'ftp://x' must start with http:// or https://"]


@pytest.mark.parametrize("root", [{"version": {"distribution": "opensearch", "number": "2.19.1"}},
                                  {"version": {"number": "9.1.0"}}], ids=["opensearch-py", "elasticsearch-py"])
@pytest.mark.parametrize("credentials", [{"username": "admin", "password": "secret"}, {"api_key": "b3duLWtleQ=="}],
                         ids=["basic", "api-key"])
def test_a_search_for_a_caller_carries_the_callers_credentials_and_none_of_ours(serve, root, credentials) -> None:
    url = serve(200, {**root, "responses": [{}]}, {"X-Elastic-Product": "Elasticsearch"})
    server = serve.servers[-1]
    with connect(EngineSettings(url=url, **credentials)) as engine:
        engine.msearch("images", [{}])
        engine.msearch("images", [{}], headers={})
        engine.msearch("images", [{}], headers={"Authorization": "Bearer theirs", "Cookie": "session=1", "X-Secret": "no"})
    _probe, own, anonymous, theirs = server.seen
    assert len(own["authorization"]) == 1 and own["authorization"][0].startswith(("Basic ", "ApiKey "))
    assert "authorization" not in anonymous
    assert theirs["authorization"] == ["Bearer theirs"]
    assert theirs["cookie"] == ["session=1"]
    assert "x-secret" not in theirs
