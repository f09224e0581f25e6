"""``ssi-plugin serve`` on each engine: the search API's URL options and errors on ssi searches, as the engine gives them.

Each ssi search here is compared with the engine's own answer to the same search
made plain (``serve_support.MatchSearcher`` runs the ssi clause as a match query
on ``caption``), so what is checked is that the endpoint answers as the cluster does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_support import MatchSearcher, running_proxy, without_took

from ssi_plugin.engine import EngineClient

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def searcher(engine_url: str) -> MatchSearcher:
    return MatchSearcher(engine_url)


@pytest.fixture(scope="module")
def proxy_url(engine_url: str, engine_kind: str, searcher: MatchSearcher) -> Iterator[str]:
    with running_proxy(engine_url, searcher, engine=engine_kind) as url:
        yield url


RICH_DOCS = [
    {
        "caption": "a dog catching a frisbee",
        "tags": ["dog", "park"],
        "meta": {"width": 640, "camera": {"model": "x100"}},
        "empty": {},
        "arr": [],
    },
    {
        "caption": "a dog asleep",
        "tags": [],
        "meta": {"width": 320, "camera": {}},
        "dotted.name": 1,
        "nested": [[{"x": 1}], [], {"x": 2, "y": 3}],
    },
    {"caption": "a cat on a sofa", "tags": ["cat"], "meta": {"width": 800}},
]


@pytest.fixture(scope="module")
def rich_index(engine: EngineClient) -> Iterator[str]:
    """Documents with nested objects, arrays, empty values and a dotted field name, for response filtering."""
    name = f"test-rich-{uuid.uuid4().hex[:8]}"
    engine.request("PUT", f"/{name}", body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    for number, doc in enumerate(RICH_DOCS):
        engine.request("PUT", f"/{name}/_doc/{number}", body=doc, params={"refresh": "true"})
    yield name
    engine.request("DELETE", f"/{name}")


def as_plain(body: dict[str, Any]) -> dict[str, Any]:
    """The plain search ``MatchSearcher`` runs for an ssi body: what the engine would answer for the ssi one."""
    if "ssi" not in body.get("query", {}):
        return body
    return {**body, "query": {"match": {"caption": body["query"]["ssi"]["query"]}}}


def same_answer(proxied: httpx.Response, direct: httpx.Response) -> None:
    assert proxied.status_code == direct.status_code, proxied.text
    ours, theirs = proxied.json(), direct.json()
    assert ("took" in ours) == ("took" in theirs)
    assert without_took(ours) == without_took(theirs)


FILTER_PATHS = [
    "hits.hits._id",
    "hits.hits._source.caption,hits.total.value",
    "-hits.hits._source",
    "-_shards.*,-hits.hits._source.meta.camera.*",
    "**._id",
    "hits.*.*id",
    "hits.hits._sour*.me*.camera",
    "hits.hits._source.tags",
    "hits.hits._source.nested.x",
    "-hits.hits._source.nested.x,-hits.hits._source.empty.x",
    "hits.hits._source.dotted\\.name",
    "-**.model",
    "took",
    "took,-took",
    "no.such.field",
    " hits.total , timed_out ",
]


@pytest.mark.parametrize("filter_path", FILTER_PATHS)
def test_filter_path_filters_an_ssi_answer_as_the_engine_filters_its_own(
    proxy_url: str, engine_url: str, rich_index: str, filter_path: str
) -> None:
    body = {"query": {"ssi": {"query": "dog cat"}}}
    params = {"filter_path": filter_path}
    same_answer(
        httpx.post(f"{proxy_url}/{rich_index}/_search", params=params, json=body),
        httpx.post(f"{engine_url}/{rich_index}/_search", params=params, json=as_plain(body)),
    )


@pytest.mark.parametrize(
    "params",
    [
        {"_source": "false"},
        {"_source": "true"},
        {"_source": "caption,tags"},
        {"_source_includes": "meta.*", "_source_excludes": "meta.camera"},
        {"_source": "true", "_source_excludes": "meta,tags"},
        {"_source": "false", "_source_includes": "caption"},
        {"_source": "caption", "_source_includes": "tags"},
        {"_source": "no_such_field"},
    ],
)
def test_source_options_in_the_url_shape_an_ssi_answer_as_on_the_engine(
    proxy_url: str, engine_url: str, rich_index: str, params: dict[str, str]
) -> None:
    body = {"query": {"ssi": {"query": "dog cat"}}, "_source": ["meta"]}  # the URL wins over the body
    same_answer(
        httpx.post(f"{proxy_url}/{rich_index}/_search", params=params, json=body),
        httpx.post(f"{engine_url}/{rich_index}/_search", params=params, json=as_plain(body)),
    )


def test_source_filtering_in_the_body_of_an_ssi_search(proxy_url: str, engine_url: str, rich_index: str) -> None:
    body = {"query": {"ssi": {"query": "dog"}}, "_source": {"includes": ["meta.*"], "excludes": ["meta.camera"]}}
    proxied = httpx.post(f"{proxy_url}/{rich_index}/_search", json=body)
    same_answer(proxied, httpx.post(f"{engine_url}/{rich_index}/_search", json=as_plain(body)))
    sources = [hit["_source"] for hit in proxied.json()["hits"]["hits"]]
    assert sorted(sources, key=str) == [{"meta": {"width": 320}}, {"meta": {"width": 640}}]


def test_a_search_body_in_the_source_parameter_is_read_as_the_engine_reads_it(
    proxy_url: str, engine_url: str, searcher: MatchSearcher, rich_index: str
) -> None:
    body = {"query": {"ssi": {"query": "cat"}}, "_source": ["caption"]}
    proxied = httpx.get(
        f"{proxy_url}/{rich_index}/_search",
        params={"source": json.dumps(body), "source_content_type": "application/json", "filter_path": "hits.hits"},
    )
    same_answer(
        proxied,
        httpx.get(
            f"{engine_url}/{rich_index}/_search",
            params={"source": json.dumps(as_plain(body)), "source_content_type": "application/json", "filter_path": "hits.hits"},
        ),
    )
    assert proxied.json()["hits"]["hits"][0]["_source"] == {"caption": "a cat on a sofa"}
    assert searcher.calls[-1][1] == body

    ndjson = "{}\n" + json.dumps(body) + "\n"
    proxied = httpx.get(
        f"{proxy_url}/{rich_index}/_msearch",
        params={"source": ndjson, "source_content_type": "application/x-ndjson"},
    )
    assert proxied.status_code == 200
    assert proxied.json()["responses"][0]["hits"]["hits"][0]["_source"] == {"caption": "a cat on a sofa"}

    # Without its content type the engine refuses a source parameter: so does the endpoint, with the engine's own answer.
    same_answer(
        httpx.get(f"{proxy_url}/{rich_index}/_search", params={"source": json.dumps(body)}),
        httpx.get(f"{engine_url}/{rich_index}/_search", params={"source": json.dumps(as_plain(body))}),
    )


@pytest.mark.parametrize(
    "filter_path",
    [None, "responses.hits.hits._id,responses.status,responses.error.type", "responses.hits.total", "took", "-responses.hits.hits._source"],
)
def test_msearch_mixing_ssi_and_plain_searches_filters_the_merged_answer(
    proxy_url: str, engine_url: str, rich_index: str, filter_path: str | None
) -> None:
    searches = [
        ({}, {"query": {"ssi": {"query": "dog"}}}),
        ({"index": f"{rich_index}-missing"}, {"query": {"match_all": {}}}),
        ({}, {"query": {"match": {"caption": "cat"}}}),
        ({"index": f"{rich_index}-missing"}, {"query": {"ssi": {"query": "dog"}}}),
        ({}, {"query": {"ssi": {"query": "sofa"}}, "_source": False}),
    ]

    def ndjson(plain: bool) -> str:
        return "".join(json.dumps(h) + "\n" + json.dumps(as_plain(b) if plain else b) + "\n" for h, b in searches)

    params = {"filter_path": filter_path} if filter_path else {}
    headers = {"content-type": "application/x-ndjson"}
    proxied = httpx.post(f"{proxy_url}/{rich_index}/_msearch", params=params, content=ndjson(False), headers=headers)
    direct = httpx.post(f"{engine_url}/{rich_index}/_msearch", params=params, content=ndjson(True), headers=headers)
    same_answer(proxied, direct)
    if filter_path is None:
        assert [r["status"] for r in proxied.json()["responses"]] == [200, 404, 200, 404, 200]


def test_a_missing_index_gets_the_engines_own_404(proxy_url: str, engine_url: str, index_name: str) -> None:
    missing = f"{index_name}-missing"
    for path, body in [
        (f"/{missing}/_search", {"query": {"ssi": {"query": "dog"}}}),
        (f"/{missing}/_search", {"query": {"match_all": {}}}),
        (f"/{missing}/_count", {"query": {"match_all": {}}}),
        (f"/{missing}/_search?filter_path=hits.hits._id", {"query": {"ssi": {"query": "dog"}}}),  # errors are never filtered
    ]:
        proxied = httpx.post(f"{proxy_url}{path}", json=body)
        assert proxied.status_code == 404
        assert proxied.json()["error"]["type"] == "index_not_found_exception"
        same_answer(proxied, httpx.post(f"{engine_url}{path}", json=as_plain(body)))
