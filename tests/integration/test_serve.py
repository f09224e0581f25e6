"""``ssi-plugin serve`` against the real node: existing clients work unchanged, ssi queries are rewritten.

The endpoint runs in-process on a free port, with ``serve_support.MatchSearcher``
as its ssi searcher: what is under test here is the endpoint, not the searcher.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, RequestError, TransportError
from opensearchpy.helpers import bulk
from serve_support import CAPTIONS, MatchSearcher, running_proxy, without_took

from ssi_plugin.engine import EngineClient

pytestmark = [
    pytest.mark.engine,
    pytest.mark.opensearch_only(
        reason="drives the endpoint with OpenSearch's own clients; the Elasticsearch core node lacks GET / (rest-root)"
    ),
]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def assert_engine_error(response: httpx.Response, status: int, error_type: str) -> dict[str, Any]:
    """The engine's error shape: the answer any client parses as a cluster error."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    assert body["error"]["type"] == error_type
    assert body["error"]["root_cause"][0]["type"] == error_type
    return body["error"]


@pytest.fixture(scope="module")
def searcher(engine_url: str) -> MatchSearcher:
    return MatchSearcher(engine_url)


@pytest.fixture(scope="module")
def proxy_url(engine_url: str, searcher: MatchSearcher) -> Iterator[str]:
    with running_proxy(engine_url, searcher) as url:
        yield url


@pytest.fixture
def through_proxy(proxy_url: str) -> Iterator[OpenSearch]:
    """opensearch-py, unchanged, pointed at the endpoint."""
    client = OpenSearch(hosts=[proxy_url], max_retries=0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def direct(engine_url: str) -> Iterator[OpenSearch]:
    """The same client pointed at the cluster itself, for comparison."""
    client = OpenSearch(hosts=[engine_url], max_retries=0)
    yield client
    client.close()


@pytest.fixture
def images(through_proxy: OpenSearch, index_name: str) -> str:
    """An index created and filled through the endpoint."""
    through_proxy.indices.create(
        index=index_name,
        body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
    )
    actions = ({"_index": index_name, "_id": str(i), "_source": {"caption": c}} for i, c in enumerate(CAPTIONS))
    indexed, errors = bulk(through_proxy, actions, refresh=True)
    assert (indexed, errors) == (len(CAPTIONS), [])
    return index_name


def test_a_standard_client_works_unchanged_through_the_endpoint(
    through_proxy: OpenSearch, direct: OpenSearch, images: str
) -> None:
    assert through_proxy.info() == direct.info()
    assert through_proxy.indices.exists(index=images) is True
    assert through_proxy.indices.exists(index=f"{images}-missing") is False
    assert through_proxy.count(index=images)["count"] == len(CAPTIONS)
    query = {"query": {"match": {"caption": "dog"}}, "size": 3}
    assert without_took(through_proxy.search(index=images, body=query)) == without_took(
        direct.search(index=images, body=query)
    )
    assert through_proxy.cat.indices(index=images, h="index,docs.count") == direct.cat.indices(
        index=images, h="index,docs.count"
    )
    assert through_proxy.get(index=images, id="2")["_source"] == {"caption": CAPTIONS[2]}
    with pytest.raises(NotFoundError) as missing:
        through_proxy.search(index=f"{images}-missing", body=query)
    assert missing.value.error == "index_not_found_exception"


def test_an_ssi_query_is_answered_by_the_searcher(
    through_proxy: OpenSearch,
    engine: EngineClient,
    searcher: MatchSearcher,
    images: str,
) -> None:
    body = {
        "query": {"ssi": {"query": "dog", "k": 5, "fusion": "linear", "explain": True}},
        "size": 2,
        "_source": ["caption"],
    }
    answer = through_proxy.search(index=images, body=body)

    expected = engine.search(
        images,
        {"query": {"match": {"caption": "dog"}}, "size": 2, "_source": ["caption"]},
    )
    assert without_took(answer) == without_took(expected)
    assert [hit["_source"]["caption"] for hit in answer["hits"]["hits"]] == [
        h["_source"]["caption"] for h in expected["hits"]["hits"]
    ]
    index, seen_body, _ = searcher.calls[-1]
    assert (index, seen_body) == (images, body)


def test_size_and_from_in_the_query_string_reach_the_searcher(
    proxy_url: str, searcher: MatchSearcher, images: str
) -> None:
    response = httpx.post(
        f"{proxy_url}/{images}/_search",
        params={"size": 1, "from": 1},
        json={"query": {"ssi": {"query": "dog"}}, "size": 5},
    )
    assert response.status_code == 200
    assert len(response.json()["hits"]["hits"]) == 1
    assert searcher.calls[-1][1] == {
        "query": {"ssi": {"query": "dog"}},
        "size": 1,
        "from": 1,
    }


def test_msearch_answers_ssi_and_other_searches_in_order(
    through_proxy: OpenSearch, engine: EngineClient, images: str
) -> None:
    cat = {"query": {"match": {"caption": "cat"}}}
    searches = [
        {"index": images},
        {"query": {"ssi": {"query": "dog"}}, "size": 2},
        {"index": images},
        cat,
        {"index": f"{images}-missing"},
        cat,
        {},
        {"query": {"ssi": {"query": "football"}}},
    ]
    answer = through_proxy.msearch(body=searches, index=images)
    responses = answer["responses"]

    assert len(responses) == 4
    assert without_took(responses[0]) == without_took(
        {
            **engine.search(images, {"query": {"match": {"caption": "dog"}}, "size": 2}),
            "status": 200,
        }
    )
    assert without_took(responses[1]) == without_took({**engine.search(images, cat), "status": 200})
    assert responses[2]["status"] == 404 and responses[2]["error"]["type"] == "index_not_found_exception"
    assert [h["_source"]["caption"] for h in responses[3]["hits"]["hits"]] == ["two children playing football"]


def test_msearch_without_ssi_passes_through(through_proxy: OpenSearch, direct: OpenSearch, images: str) -> None:
    searches = [
        {"index": images},
        {"query": {"match": {"caption": "dog"}}},
        {},
        {"query": {"match_all": {}}, "size": 1},
    ]
    expected = direct.msearch(body=searches, index=images)
    assert without_took(through_proxy.msearch(body=searches, index=images)) == without_took(expected)


def test_an_ssi_query_on_a_missing_index_gets_the_engine_error(through_proxy: OpenSearch, index_name: str) -> None:
    with pytest.raises(NotFoundError) as missing:
        through_proxy.search(index=f"{index_name}-missing", body={"query": {"ssi": {"query": "dog"}}})
    assert missing.value.error == "index_not_found_exception"


def test_a_malformed_body_is_refused_in_the_engine_shape(
    through_proxy: OpenSearch, proxy_url: str, images: str
) -> None:
    with pytest.raises(RequestError) as refused:
        through_proxy.search(index=images, body='{"query": {"ssi": ')
    assert refused.value.status_code == 400
    assert refused.value.error == "parsing_exception"

    msearch = httpx.post(
        f"{proxy_url}/{images}/_msearch",
        content=b'{}\n{"query": {"ssi": {"query": "dog"}}}\n{}\n{oops\n',
        headers={"content-type": "application/x-ndjson"},
    )
    assert "line 4" in assert_engine_error(msearch, 400, "parsing_exception")["reason"]


@pytest.mark.parametrize(
    ("clause", "names"),
    [
        ({"query": "dog", "colour": "red"}, "[colour]"),
        ({"k": 5}, "[query]"),
        ({"query": "   "}, "[query]"),
        ({"query": "dog", "k": 0}, "[k]"),
        ({"query": "dog", "k": 101}, "[k]"),
        ({"query": "dog", "fusion": "max"}, "[fusion]"),
        ("dog", "must be an object"),
    ],
)
def test_a_bad_ssi_clause_is_refused_naming_the_field(
    through_proxy: OpenSearch,
    searcher: MatchSearcher,
    images: str,
    clause: Any,
    names: str,
) -> None:
    calls = len(searcher.calls)
    with pytest.raises(RequestError) as refused:
        through_proxy.search(index=images, body={"query": {"ssi": clause}})
    assert refused.value.status_code == 400
    assert refused.value.error == "parsing_exception"
    assert names in refused.value.info["error"]["reason"]
    assert len(searcher.calls) == calls, "a refused clause never reaches the searcher"


def test_an_ssi_clause_where_no_frontend_puts_one_is_left_to_the_engine(through_proxy: OpenSearch, images: str) -> None:
    with pytest.raises(RequestError) as refused:
        through_proxy.search(
            index=images,
            body={"query": {"constant_score": {"filter": {"ssi": {"query": "dog"}}}}},
        )
    assert "unknown query [ssi]" in json.dumps(refused.value.info["error"]["root_cause"])


def test_ssi_as_the_scoring_clause_of_bool_reaches_the_searcher_with_its_filters(
        through_proxy: OpenSearch, images: str, searcher: MatchSearcher) -> None:
    answer = through_proxy.search(index=images, body={
        "query": {"bool": {"must": [{"ssi": {"query": "dog"}}], "must_not": [{"match": {"caption": "beach"}}]}}})
    assert answer["hits"]["hits"] and all("beach" not in hit["_source"]["caption"] for hit in answer["hits"]["hits"])
    assert "bool" in searcher.calls[-1][1]["query"]


def test_a_cluster_that_is_down_gives_502_in_the_engine_shape(
    searcher: MatchSearcher,
) -> None:
    down = closed_port_url()
    with running_proxy(down, searcher) as url:
        error = assert_engine_error(httpx.get(f"{url}/"), 502, "ssi_upstream_unreachable")
        assert down in error["reason"]
        assert_engine_error(
            httpx.post(f"{url}/i/_search", json={"query": {"match_all": {}}}),
            502,
            "ssi_upstream_unreachable",
        )
        mixed = b'{}\n{"query": {"match_all": {}}}\n{}\n{"query": {"ssi": {"query": "dog"}}}\n'
        assert_engine_error(
            httpx.post(f"{url}/i/_msearch", content=mixed),
            502,
            "ssi_upstream_unreachable",
        )
        client = OpenSearch(hosts=[url], max_retries=0)
        with pytest.raises(TransportError) as failed:
            client.info()
        assert failed.value.status_code == 502


def test_a_body_over_the_limit_gives_413(engine_url: str, searcher: MatchSearcher, images: str) -> None:
    with running_proxy(engine_url, searcher, max_body_size="2KiB") as url:
        small = {"query": {"match": {"caption": "dog " * 100}}}
        assert httpx.post(f"{url}/{images}/_search", json=small).status_code == 200
        large = {"query": {"match": {"caption": "dog " * 1000}}}
        error = assert_engine_error(
            httpx.post(f"{url}/{images}/_search", json=large),
            413,
            "ssi_request_too_large",
        )
        assert "limit of 2048 bytes" in error["reason"]
        chunked = httpx.post(f"{url}/{images}/_search", content=iter([json.dumps(large).encode()]))  # no content-length
        assert_engine_error(chunked, 413, "ssi_request_too_large")


def test_a_sync_or_async_searcher_gets_the_clients_credentials(engine_url: str, images: str) -> None:
    seen: list[Mapping[str, str]] = []

    async def async_searcher(index: str, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        seen.append(headers)
        return {
            "took": 0,
            "timed_out": False,
            "_shards": {},
            "hits": {
                "total": {"value": 0, "relation": "eq"},
                "max_score": None,
                "hits": [],
            },
        }

    credentials = {"Authorization": "ApiKey c2VjcmV0", "Cookie": "session=s1", "X-Opaque-Id": "trace-7", "X-Other": "kept out"}
    with running_proxy(engine_url, async_searcher) as url:
        response = httpx.post(
            f"{url}/{images}/_search",
            json={"query": {"ssi": {"query": "dog"}}},
            headers=credentials,
        )
    assert response.status_code == 200 and response.json()["hits"]["hits"] == []
    assert seen == [{"authorization": "ApiKey c2VjcmV0", "cookie": "session=s1", "x-opaque-id": "trace-7"}]


def test_a_searcher_failure_is_an_engine_shaped_500(engine_url: str, images: str) -> None:
    def broken(index: str, body: dict[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
        raise RuntimeError("model file is truncated")

    with running_proxy(engine_url, broken) as url:
        error = assert_engine_error(
            httpx.post(f"{url}/{images}/_search", json={"query": {"ssi": {"query": "dog"}}}),
            500,
            "ssi_exception",
        )
    assert "model file is truncated" in error["reason"]


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with what it received, and with headers meant for the next hop only."""

    def _echo(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        answer = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": self.rfile.read(length).decode(),
            }
        ).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-upstream", "echo")
        self.send_header("content-length", str(len(answer)))
        for name, value in ANSWER_HOP_BY_HOP.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_DELETE = _echo

    def log_message(self, format: str, *args: Any) -> None:
        pass


ANSWER_HOP_BY_HOP = {"Connection": "close, X-Hop-Answer", "X-Hop-Answer": "for serve only", "Keep-Alive": "timeout=5",
                    "Proxy-Authenticate": 'Basic realm="upstream"', "Trailer": "X-Checksum", "Upgrade": "h2c"}


@pytest.fixture
def echo_upstream() -> Iterator[str]:
    """A stand-in upstream that echoes requests: what reaches the cluster, header by header."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_requests_reach_the_cluster_unchanged_with_their_credentials(
    echo_upstream: str, searcher: MatchSearcher
) -> None:
    with running_proxy(echo_upstream, searcher) as url:
        response = httpx.put(
            f"{url}/logs-%3C2024%3E/_doc/a%2Fb?refresh=wait_for&routing=r1",
            content=b'{"caption": "caf\xc3\xa9"}',
            headers={
                "Authorization": "Basic dXNlcjpwYXNz",
                "Content-Type": "application/json",
                "X-Opaque-Id": "trace-1",
            },
        )
    assert response.status_code == 200
    assert response.headers["x-upstream"] == "echo"
    seen = response.json()
    assert seen["method"] == "PUT"
    assert seen["path"] == "/logs-%3C2024%3E/_doc/a%2Fb?refresh=wait_for&routing=r1"
    assert seen["body"] == '{"caption": "café"}'
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert headers["authorization"] == "Basic dXNlcjpwYXNz"
    assert headers["x-opaque-id"] == "trace-1"
    assert headers["content-type"] == "application/json"
    assert headers["host"] == echo_upstream.removeprefix("http://")


def test_hop_by_hop_headers_stay_on_their_hop_both_ways(echo_upstream: str, searcher: MatchSearcher) -> None:
    request_hop_by_hop = {"Connection": "keep-alive, X-Hop-Request", "X-Hop-Request": "for serve only", "Keep-Alive": "timeout=5",
                          "Proxy-Authorization": "Basic cHJveHk6c2VjcmV0", "Proxy-Connection": "keep-alive", "TE": "trailers",
                          "Upgrade": "h2c"}
    with running_proxy(echo_upstream, searcher) as url:
        response = httpx.post(f"{url}/images/_doc", content=b'{"caption": "a dog"}',
                              headers={**request_hop_by_hop, "Content-Type": "application/json", "X-End-To-End": "kept"})
    assert response.status_code == 200
    arrived = {name.lower() for name in response.json()["headers"]}
    assert "x-end-to-end" in arrived
    assert arrived.isdisjoint(name.lower() for name in request_hop_by_hop), arrived
    assert response.headers["x-upstream"] == "echo"
    assert set(response.headers).isdisjoint({"x-hop-answer", "keep-alive", "proxy-authenticate", "trailer", "upgrade"})
    assert "x-hop-answer" not in response.headers.get("connection", "").lower()


def test_a_bulk_body_over_the_search_body_limit_streams_to_the_cluster(engine_url: str, searcher: MatchSearcher,
                                                                       index_name: str) -> None:
    lines = "".join(f'{{"index": {{"_id": "{n}"}}}}\n{{"caption": "a dog number {n} " }}\n' for n in range(400))
    with running_proxy(engine_url, searcher, max_body_size="2KiB") as url:
        sized = httpx.post(f"{url}/{index_name}/_bulk", content=lines.encode(), headers={"content-type": "application/x-ndjson"})
        chunked = httpx.post(f"{url}/{index_name}-chunked/_bulk", params={"refresh": "true"},
                             content=iter([lines[: len(lines) // 2].encode(), lines[len(lines) // 2 :].encode()]),
                             headers={"content-type": "application/x-ndjson"})
        httpx.post(f"{url}/{index_name}/_refresh")
        counts = [httpx.get(f"{url}/{name}/_count") for name in (index_name, f"{index_name}-chunked")]
    assert len(lines) > 10 * 2048
    assert (sized.status_code, chunked.status_code) == (200, 200), sized.text
    assert (sized.json()["errors"], chunked.json()["errors"]) == (False, False)
    assert [count.json()["count"] for count in counts] == [400, 400]


def test_a_large_answer_streams_back_whole(echo_upstream: str, searcher: MatchSearcher) -> None:
    payload = json.dumps({"captions": ["a dog catching a frisbee"] * 20_000})  # ~0.5 MB each way
    with running_proxy(echo_upstream, searcher) as url:
        response = httpx.post(
            f"{url}/images/_doc",
            content=payload,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["content-length"]) > 256 * 1024
    assert response.json()["body"] == payload


def test_compressed_requests_are_read_and_passed_on(proxy_url: str, direct: OpenSearch, images: str) -> None:
    client = OpenSearch(hosts=[proxy_url], http_compress=True, max_retries=0)  # gzip request bodies
    query = {"query": {"match": {"caption": "cat"}}}
    assert without_took(client.search(index=images, body=query)) == without_took(
        direct.search(index=images, body=query)
    )
    ssi = client.search(index=images, body={"query": {"ssi": {"query": "cat"}}})
    assert [hit["_id"] for hit in ssi["hits"]["hits"]] == [
        hit["_id"] for hit in direct.search(index=images, body=query)["hits"]["hits"]
    ]
    client.close()

