"""``ssi-plugin serve`` under generated bodies: whatever a client sends to ``_search`` or ``_msearch``, it gets a
search response (200) or a refusal in the engine's error shape (4xx), never a 5xx and never a Python traceback.

The endpoint runs in a thread with the real searcher (a tiny generator trained for a real index) in front of the
real node. Bodies are built by hypothesis: ``ssi`` clauses at the top of ``query`` and inside ``bool``, with every
option valid, wrong or absurd, and raw bytes that are not JSON at all.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from tiny_generator import index_with_generator

from ssi_plugin.embedding import DIMS
from ssi_plugin.engine import EngineClient
from ssi_plugin.serving.proxy import ProxySettings, SearchProxy
from ssi_plugin.serving.searchers import IndexSearchers
from ssi_plugin.serving.server import serve_in_thread

pytestmark = pytest.mark.engine

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# -- strategies -------------------------------------------------------------------------------------------------------

huge_numbers = st.sampled_from([2**31, 2**63, -(2**63) - 1, 10**30, 10**400, 1e308, -1e308, 1e-320])
numbers = st.integers(-3, 30) | st.integers() | huge_numbers | st.floats()  # floats: NaN and ±Infinity included
any_text = st.text(max_size=30) | st.text(st.characters(exclude_categories=()), max_size=8)  # lone surrogates too
long_text = st.builds(lambda piece, times: piece * times, st.text(min_size=1, max_size=8), st.integers(1, 20_000))
json_values = st.recursive(
    st.none() | st.booleans() | numbers | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=10,
)
"""Any JSON value (and the NaN and Infinity that Python writes): what a wrong option holds."""

VALID_FILTERS = [
    {"term": {"ssi.objects": "dog"}},
    {"terms": {"ssi.scene": ["park", "beach"]}},
    {"exists": {"field": "caption"}},
    {"range": {"ssi.objects": {"gte": "a"}}},
    {"match": {"caption": "dog"}},
]
filters = st.sampled_from(VALID_FILTERS) | st.lists(st.sampled_from(VALID_FILTERS), min_size=1, max_size=3)
bad_filters = st.sampled_from([{}, [], [{}], {"term": 5}, {"no_such_query": {}}, {"term": {"ssi.objects": {"value": []}}},
                               {"bool": {"must": "dog"}}, {"match": {"caption": {"query": None}}}, {"range": {"caption": {"gte": {}}}}])
vectors = st.lists(st.floats(-1, 1, width=32), min_size=DIMS, max_size=DIMS)
bad_vectors = (st.lists(st.floats() | st.integers() | huge_numbers, max_size=6)
               | st.lists(st.floats(-1, 1, width=32), min_size=DIMS + 1, max_size=DIMS + 1))

dense_options = st.fixed_dictionaries({}, optional={
    "hybrid": st.booleans(),
    "vector_field": st.sampled_from(["caption_vector", "caption", "no_such_field"]),
    "query_vector": vectors,
})
ssi_clauses = st.builds(
    lambda clause, dense, with_dense: {**clause, **(dense if with_dense else {})},
    st.fixed_dictionaries(
        {"query": st.sampled_from(["a dog catching a frisbee", "cat", "a child kicking a ball", "dog beach"])
         | any_text.filter(str.strip) | long_text.filter(str.strip)},
        optional={
            "k": st.integers(1, 100),
            "fusion": st.sampled_from(["rrf", "linear"]),
            "bm25_field": st.sampled_from(["caption", "ssi.objects", "no_such_field"]),
            "explain": st.booleans(),
            "filter": filters,
        },
    ),
    dense_options,
    st.sampled_from([False, False, False, True]),  # a dense leg in one clause of four: it fails where the node has no kNN
)
"""``ssi`` clauses with every option valid (a query may still find nothing, or name a field the index lacks)."""
wrong_clause_options = {
    "query": st.sampled_from(["", " ", None, 5, ["dog"], {"query": "dog"}]),
    "k": st.sampled_from([0, -1, 101, 1.5, "10", True]) | huge_numbers,
    "fusion": st.sampled_from(["RRF", "", "sum", None]),
    "hybrid": st.sampled_from(["yes", 2, None, []]),
    "vector_field": st.sampled_from(["", 5, None, ["caption_vector"]]),
    "query_vector": bad_vectors | st.sampled_from([[], "0.1,0.2", [[0.1]], {"0": 0.1}, 0.5, [None], [True, False]]),
    "filter": bad_filters,
    "boost": numbers,
}

body_parts = st.fixed_dictionaries({}, optional={
    "size": st.integers(0, 20) | st.integers(9_990, 10_010),
    "from": st.integers(0, 20) | st.integers(9_990, 10_010),
    "_source": st.booleans() | st.sampled_from([["caption"], {"includes": ["ssi.*"]}, "caption"]),
    "fields": st.sampled_from([["caption"], [{"field": "ssi.id"}], ["*"]]),
    "docvalue_fields": st.sampled_from([["ssi.id"], [{"field": "ssi.objects", "format": "use_field_mapping"}]]),
    "version": st.booleans(),
    "seq_no_primary_term": st.booleans(),
    "timeout": st.sampled_from(["1s", "10ms"]),
    "track_total_hits": st.booleans() | st.integers(0, 100),
    "min_score": st.floats(0, 2),
    "sort": st.sampled_from(["_score", ["_score"], [{"_score": "desc"}], [{"_score": {"order": "desc"}}]]),
    "explain": st.booleans(),
    "post_filter": filters,
    "aggs": st.sampled_from([{"scenes": {"terms": {"field": "ssi.scene"}}}, {"top": {"max": {"field": "_seq_no"}}}]),
    "highlight": st.sampled_from([{"fields": {"caption": {}}}, {"fields": [{"caption": {}}]},
                                  {"fields": {"caption": {}}, "highlight_query": {"match_all": {}}}]),
})
"""The rest of a search body, each part valid."""
wrong_body_parts = {
    "size": st.sampled_from([-1, 1.5, "ten", None, 2**31, 10**30, 1e999]),
    "from": st.sampled_from([-1, 2.5, "0", [], 2**63]),
    "_source": st.sampled_from([5, [5], {"includes": 5}, None]),
    "fields": st.sampled_from(["caption", 5, [5], [{"no_field": 1}], [None], {}]),
    "docvalue_fields": st.sampled_from(["ssi.id", 5, [5], [{"format": "x"}], [None], {}]),
    "stored_fields": st.sampled_from(["_none_", 5, [5]]),
    "version": st.sampled_from(["yes", 5, None]),
    "timeout": st.sampled_from(["soon", -1, [], "-5s"]),
    "track_total_hits": st.sampled_from([-1, -100, "all", 1.5, None, 2**40]),
    "min_score": st.sampled_from(["high", [], -1e308]) | st.floats(),
    "sort": st.sampled_from([["caption"], {"_score": "asc"}, [{"_score": {}}], [[]], 5, [{"_score": []}]]),
    "explain": st.sampled_from(["yes", 2, []]),
    "post_filter": bad_filters,
    "aggs": st.sampled_from([{}, {"bad": {"no_such_agg": {}}}, {"x": 5}, [], "terms"]),
    "aggregations": st.sampled_from([{"bad": {"terms": {}}}]),
    "highlight": st.sampled_from([{"fields": "caption"}, {"fields": [1]}, {"fields": [["caption"]]}, {"fields": 5}, [],
                                  {"fields": {"caption": 5}}, {"highlight_query": 5}]),
    "search_after": st.sampled_from([[1], []]),
    "collapse": st.just({"field": "caption"}),
}


WRONG = {
    "clause": wrong_clause_options,
    "body": wrong_body_parts,
    "bool": dict.fromkeys(["filter", "must_not", "minimum_should_match", "boost", "filterr"], bad_filters),
}
WRONG_PARTS = [(where, name) for where, table in WRONG.items() for name in sorted(table)]
"""Every part a body may get wrong, each as likely as the others."""


@st.composite
def search_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """A valid ``ssi`` search body, or one with a part or two (of the clause, the ``bool`` or the body) made wrong.

    The clause sits at the top of ``query`` or as the scoring clause of ``bool`` beside filters.
    """
    parts = {"clause": dict(draw(ssi_clauses)), "body": dict(draw(body_parts)), "bool": {}}
    placement = draw(st.sampled_from(["top", "must", "must-list", "should", "filtered"]))
    if placement == "filtered":
        parts["bool"] = dict(draw(st.fixed_dictionaries({"filter": filters}, optional={"must_not": filters})))
    for where, name in draw(st.lists(st.sampled_from([*WRONG_PARTS, ("clause", None), ("body", None)]), max_size=2)):
        if name is None:  # a part no one knows of
            parts[where][draw(any_text)] = draw(json_values)
        else:  # mostly a value of the wrong kind for that part, sometimes any JSON at all
            parts[where][name] = draw(WRONG[where][name] if draw(st.integers(0, 3)) else json_values)
    ssi = {"ssi": parts["clause"]}
    if placement == "top":
        return {"query": ssi, **parts["body"]}
    scoring = {"must": ssi, "must-list": [ssi], "should": [ssi], "filtered": [ssi]}[placement]
    return {"query": {"bool": {"should" if placement == "should" else "must": scoring, **parts["bool"]}}, **parts["body"]}


def as_json(value: Any) -> bytes:
    """What a client's serializer writes (NaN and Infinity as the literals Python allows)."""
    return json.dumps(value).encode()


nesting = st.integers(1, 50_000)
malformed_json = st.one_of(
    st.sampled_from([b"", b" ", b"\n", b"{", b"}", b"[]", b"null", b"0", b'"ssi"', b"{}", b"\xef\xbb\xbf{}", b"\xff\xfe"]),
    st.binary(max_size=64),
    json_values.map(as_json),  # any JSON value, objects without a query among them
    search_bodies().map(as_json).flatmap(lambda body: st.integers(0, len(body)).map(lambda cut: body[:cut])),  # cut short
    search_bodies().map(as_json).flatmap(  # invalid UTF-8 inside
        lambda body: st.tuples(st.integers(0, len(body)), st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
        .map(lambda cut: body[: cut[0]] + cut[1] + body[cut[0] :])
    ),
    nesting.map(lambda depth: b'{"query":{"ssi":{"query":"dog","filter":' + b'{"bool":{"filter":' * depth + b"{}" + b"}}" * depth
                + b"}}}"),
    nesting.map(lambda depth: b"[" * depth + b"]" * depth),
    nesting.map(lambda depth: b'{"query":' * depth + b'{"ssi":{"query":"dog"}}' + b"}" * depth),
    st.sampled_from([
        b'{"query":{"ssi":{"query":"dog"}},"size":1,"size":-1}',
        b'{"query":{"ssi":{"query":"dog","query":5}}}',
        b'{"query":{"ssi":{"query":"dog"}},"query":{"match_all":{}}}',
        b'{"query":{"ssi":{"query":"dog"}},"min_score":NaN}',
        b'{"query":{"ssi":{"query":"dog","query_vector":[NaN,Infinity,-Infinity]}}}',
        b'{"query":{"ssi":{"query":"dog"}},"size":1e999}',
        b'{"query":{"ssi":{"query":"dog","k":' + b"9" * 5000 + b"}}}",
        b'{"query":{"ssi":{"query":"\\ud800"}}}',
        b'{"query":{"ssi":{"query":"dog","\\udfff":1}}}',
    ]),
)
"""Bytes that are no ``ssi`` search: not JSON, not UTF-8, cut short, nested thousands deep, duplicate keys, NaN."""


@st.composite
def msearch_payloads(draw: st.DrawFn) -> bytes:
    """NDJSON of header and body lines: ssi searches, plain ones and junk, with or without the final newline."""
    header = st.sampled_from([{}, {"index": "{index}"}, {"index": ["{index}"]}, {"index": "{index}-missing"}, {"index": ""}]) | json_values
    body = search_bodies() | st.just({"query": {"match_all": {}}, "size": 1})
    pairs = draw(st.lists(st.tuples(header.map(as_json), body.map(as_json)), min_size=1, max_size=4))
    lines = [part for pair in pairs for part in pair]
    for _ in range(draw(st.integers(0, 2))):
        junk = malformed_json | json_values.map(as_json) | st.just(b"")
        lines.insert(draw(st.integers(0, len(lines))), draw(junk).replace(b"\n", b" "))
    ending = draw(st.sampled_from([b"\n", b"", b"\n\n", b"\r\n"]))
    return b"\n".join(lines) + ending


url_text = st.text(max_size=20)  # no lone surrogate: a URL cannot carry one
url_options = st.fixed_dictionaries({}, optional={
    "size": st.integers(-2, 20).map(str) | url_text,
    "from": st.integers(-2, 20).map(str) | url_text,
    "_source": st.sampled_from(["false", "true", "caption"]) | url_text,
    "filter_path": st.sampled_from(["hits.hits._id", "-took", "**", "responses.*.status"]) | url_text,
})

# -- the endpoint -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def endpoint(engine: EngineClient, engine_url: str, engine_kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``serve --index`` for an index with a tiny generator, as the command line builds it."""
    index = f"test-fuzz-{uuid.uuid4().hex[:8]}"
    cache_dir = Path(tmp_path_factory.mktemp("fuzz-cache"))
    index_with_generator(engine, index, cache_dir)
    searchers = IndexSearchers(engine, cache_dir=cache_dir, index=index)
    try:
        with serve_in_thread(SearchProxy(ProxySettings(upstream=engine_url, engine=engine_kind), searchers).app) as url:
            yield f"{url}/{index}"
    finally:
        searchers.close()
        engine.request("DELETE", f"/{index}")


@pytest.fixture(scope="module")
def client(endpoint: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=endpoint, timeout=60) as client:
        yield client


def assert_engine_error(answer: Any, status: int) -> None:
    """The engine's error document: what clients turn into their typed exceptions."""
    assert 400 <= status < 500, answer
    assert isinstance(answer, dict) and answer["status"] == status, answer
    error = answer["error"]
    assert isinstance(error["type"], str) and isinstance(error["reason"], str), answer
    assert error["root_cause"] and all(isinstance(cause["type"], str) for cause in error["root_cause"]), answer


def assert_search_answer(answer: Any) -> None:
    """A search response a client can read: hits best first, a total that counts something."""
    hits = answer["hits"]
    scores = [hit["_score"] for hit in hits["hits"]]
    assert scores == sorted(scores, reverse=True), answer
    if "total" in hits:
        assert hits["total"]["value"] >= 0 and hits["total"]["relation"] in ("eq", "gte"), answer


def assert_answered(response: httpx.Response) -> Any:
    """A 200 or a 4xx, JSON either way, with no Python traceback in it."""
    assert response.status_code < 500, response.text
    assert "Traceback (most recent call last)" not in response.text
    answer = response.json()
    if response.status_code >= 400:
        assert_engine_error(answer, response.status_code)
    event(f"{response.status_code} {answer['error']['type'] if response.status_code >= 400 else 'answered'}")
    return answer


def search(client: httpx.Client, body: bytes, params: dict[str, str] | None = None, method: str = "POST") -> httpx.Response:
    return client.request(method, "/_search", content=body, params=params, headers={"content-type": "application/json"})


# -- the properties ---------------------------------------------------------------------------------------------------

DOG = {"ssi": {"query": "a dog catching a frisbee"}}


@FUZZ
@given(body=search_bodies(), params=st.just({}) | url_options, method=st.sampled_from(["POST", "GET"]))
# what the fuzzing found, kept as examples: each was a 500, or a negative hits.total
@example(body={"query": DOG, "highlight": {"fields": [1]}}, params={}, method="POST")
@example(body={"query": DOG, "docvalue_fields": 5}, params={}, method="POST")
@example(body={"query": DOG, "fields": [5]}, params={}, method="POST")
@example(body={"query": DOG, "stored_fields": "_none_"}, params={}, method="POST")
@example(body={"query": DOG, "track_total_hits": -5}, params={}, method="POST")
@example(body={"query": DOG, "\udfff": 1}, params={}, method="POST")
def test_any_ssi_search_body_is_answered_or_refused_in_the_engines_shape(
    client: httpx.Client, body: dict[str, Any], params: dict[str, str], method: str
) -> None:
    answer = assert_answered(search(client, as_json(body), params, method))
    if "filter_path" not in params and "error" not in answer:
        assert_search_answer(answer)


@FUZZ
@given(body=malformed_json)
@example(body=b'{"query":{"ssi":{"query":"dog","filter":' + b'{"bool":{"filter":' * 432 + b"{}" + b"}}" * 432 + b"}}}")
@example(body=b"[" * 5000 + b"]" * 5000)
def test_any_bytes_sent_as_a_search_body_are_answered_or_refused_in_the_engines_shape(client: httpx.Client, body: bytes) -> None:
    answer = assert_answered(search(client, body))
    if "error" not in answer:
        assert_search_answer(answer)


@FUZZ
@given(payload=msearch_payloads(), params=url_options.map(lambda p: {k: v for k, v in p.items() if k != "filter_path"}))
@example(payload=b'{"index":"\\udfff"}\n' + as_json({"query": DOG}) + b"\n", params={})
def test_any_msearch_body_is_answered_search_by_search_or_refused(
    client: httpx.Client, endpoint: str, payload: bytes, params: dict[str, str]
) -> None:
    index = endpoint.rsplit("/", 1)[1].encode()
    response = client.post("/_msearch", content=payload.replace(b"{index}", index), params=params,
                           headers={"content-type": "application/x-ndjson"})
    answer = assert_answered(response)
    if response.status_code == 200:
        for item in answer["responses"]:
            if "error" in item:
                assert_engine_error(item, item["status"])
            else:
                assert_search_answer(item)
