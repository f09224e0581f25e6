"""On a secured cluster, whatever is asked for a client carries that client's credentials and only those.

nginx with basic auth plays the cluster's security in front of the real node
(secured_upstream.py). The server has an account of its own for its own work
(reading each index's identifiers for its trie); a client without credentials,
or with wrong ones, is refused whatever the server may read, for pass-through
requests and ``ssi`` queries alike.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from secured_upstream import USERS, SecuredCluster, secured_cluster
from serve_support import serve_command, serve_process
from tiny_generator import IMAGES

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import connect
from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
from ssi_plugin.serving.searchers import IndexSearchers
from ssi_plugin.serving.server import serve_in_thread

pytestmark = pytest.mark.engine

SSI = {"query": {"ssi": {"query": "a dog catching a frisbee"}}, "size": 3}
WRONG = ("alice", "not-her-password")


@pytest.fixture(scope="module")
def secured(engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecuredCluster]:
    with secured_cluster(engine_url, tmp_path_factory.mktemp("nginx")) as cluster:
        yield cluster


def _ssi_statuses(url: str, index: str, body: dict[str, object] = SSI) -> dict[str, int]:
    """The status of the same ssi search sent without credentials, with wrong ones, as a reader and as a visitor."""
    auths = {"none": None, "wrong": WRONG, "alice": SecuredCluster.auth("alice"), "visitor": SecuredCluster.auth("visitor")}
    return {who: httpx.post(f"{url}/{index}/_search", json=body, auth=auth).status_code for who, auth in auths.items()}


def test_the_secured_cluster_refuses_requests_without_the_right_credentials(secured: SecuredCluster,
                                                                           trained_index: tuple[str, Path]) -> None:
    index, _ = trained_index
    assert httpx.get(f"{secured.url}/{index}/_count").status_code == 401
    assert httpx.get(f"{secured.url}/{index}/_count", auth=WRONG).status_code == 401
    assert httpx.get(f"{secured.url}/{index}/_count", auth=secured.auth("visitor")).status_code == 403
    assert httpx.get(f"{secured.url}/{index}/_count", auth=secured.auth("alice")).json()["count"] == len(IMAGES)


def test_searchers_with_the_servers_credentials_search_for_each_client_with_the_clients_own(
        secured: SecuredCluster, trained_index: tuple[str, Path]) -> None:
    index, cache_dir = trained_index
    with connect(EngineSettings(url=secured.url, username="ssi-server", password=USERS["ssi-server"])) as engine:
        searchers = IndexSearchers(engine, cache_dir=cache_dir)
        app = SearchProxy(ProxySettings(upstream=secured.url, engine=engine.kind), searchers).app
        try:
            with serve_in_thread(app) as url:
                before_open = httpx.post(f"{url}/{index}/_search", json=SSI)  # the index check, before the generator opens
                statuses = _ssi_statuses(url, index)
                found = httpx.post(f"{url}/{index}/_search", json=SSI, auth=secured.auth("alice")).json()
                follow_ups = {**SSI, "aggs": {"scenes": {"terms": {"field": "ssi.scene"}}},
                              "post_filter": {"term": {"ssi.objects": "dog"}}, "highlight": {"fields": {"caption": {}}}}
                with_follow_ups = _ssi_statuses(url, index, follow_ups)
                searches = f'{{}}\n{json.dumps(SSI)}\n{{}}\n{{"query": {{"match_all": {{}}}}}}\n'
                msearch = {who: httpx.post(f"{url}/{index}/_msearch", content=searches, auth=auth,
                                           headers={"content-type": "application/x-ndjson"})
                           for who, auth in {"none": None, "alice": secured.auth("alice")}.items()}
        finally:
            searchers.close()
    assert before_open.status_code == 401
    assert before_open.json()["error"]["type"] == "security_exception"  # the engine's error shape, as clients parse it
    assert statuses == {"none": 401, "wrong": 401, "alice": 200, "visitor": 403}
    assert found["hits"]["hits"] and {hit["_id"] for hit in found["hits"]["hits"]} <= set(IMAGES)
    assert with_follow_ups == statuses  # aggregations, post_filter and highlight are asked with the client's credentials
    assert msearch["none"].status_code == 401
    assert [answer["status"] for answer in msearch["alice"].json()["responses"]] == [200, 200]


def test_serve_with_its_own_credentials_passes_on_only_each_clients(secured: SecuredCluster,
                                                                    trained_index: tuple[str, Path]) -> None:
    index, cache_dir = trained_index
    own = ("--user", "ssi-server", "--password", USERS["ssi-server"])
    with serve_process("--upstream", secured.url, *own, "--index", index, "--cache-dir", str(cache_dir)) as (url, _):
        counts = {who: httpx.get(f"{url}/{index}/_count", auth=auth)
                  for who, auth in {"none": None, "wrong": WRONG, "alice": secured.auth("alice")}.items()}
        statuses = _ssi_statuses(url, index)
        thumbnails = {who: httpx.get(f"{url}/_ssi/thumb/{index}/img-1", auth=auth) for who, auth in
                      {"none": None, "wrong": WRONG, "alice": secured.auth("alice"), "visitor": secured.auth("visitor")}.items()}
    assert {who: answer.status_code for who, answer in counts.items()} == {"none": 401, "wrong": 401, "alice": 200}
    assert counts["alice"].json()["count"] == len(IMAGES)
    assert statuses == {"none": 401, "wrong": 401, "alice": 200, "visitor": 403}
    # the search page's thumbnails read each document as the client, too
    assert {who: answer.status_code for who, answer in thumbnails.items()} == statuses
    assert thumbnails["none"].json()["error"]["type"] == "security_exception"
    assert thumbnails["alice"].headers["x-ssi-placeholder"] == "document [img-1] names no image"


def test_serve_refused_the_index_at_start_says_so_rather_than_that_it_does_not_exist(
        secured: SecuredCluster, trained_index: tuple[str, Path]) -> None:
    index, cache_dir = trained_index
    visitor = ("--user", "visitor", "--password", USERS["visitor"])
    command = serve_command("--upstream", secured.url, *visitor, "--index", index, "--cache-dir", str(cache_dir), "--port", "0")
    started = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert started.returncode == 3, started.stderr
    assert "answered 403: the credentials lack permission" in started.stderr
    assert "does not exist" not in started.stderr
