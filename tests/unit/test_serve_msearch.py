"""The I/O-free parts of the search endpoint: finding ssi clauses, splitting and merging _msearch bodies."""

from __future__ import annotations

import json

import pytest

from ssi_plugin.serving.engine_errors import SearchRequestError, error_body
from ssi_plugin.serving.msearch import (
    merge_responses,
    parse_msearch,
    passthrough_payload,
)
from ssi_plugin.serving.ssi_clause import find_ssi_search


def ndjson(*lines: object) -> bytes:
    return b"".join((line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines)


@pytest.mark.parametrize(
    "body",
    [
        None,
        [],
        {},
        {"size": 3},
        {"query": {"match_all": {}}},
        {"query": {"bool": {"filter": [{"term": {"tag": "x"}}]}}},
        {"query": {"nested": {"path": "p", "query": {"ssi": {"query": "x"}}}}},
    ],
)
def test_bodies_without_an_ssi_clause_where_frontends_put_one_are_not_ssi_searches(
    body: object,
) -> None:
    assert find_ssi_search(body) is None


def test_an_ssi_clause_is_validated() -> None:
    clause = find_ssi_search(
        {
            "query": {
                "ssi": {
                    "query": "a dog",
                    "k": 5,
                    "fusion": "linear",
                    "bm25_field": "caption",
                    "explain": True,
                }
            }
        }
    )
    assert clause is not None
    clause = clause.clause
    assert (
        clause.query,
        clause.k,
        clause.fusion,
        clause.bm25_field,
        clause.explain,
    ) == ("a dog", 5, "linear", "caption", True)


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ({"ssi": {"query": "dog", "size": 3}}, "[ssi] query does not support [size]"),
        ({"ssi": {}}, "[ssi] requires [query]"),
        ({"ssi": {"query": "dog", "k": 500}}, "[ssi] [k]"),
        (
            {"ssi": {"query": "dog"}, "match_all": {}},
            "only clause of [query], found also [match_all]",
        ),
        ({"ssi": ["dog"]}, "must be an object"),
    ],
)
def test_a_bad_clause_is_a_400_naming_what_is_wrong(query: dict[str, object], says: str) -> None:
    with pytest.raises(SearchRequestError) as refused:
        find_ssi_search({"query": query})
    assert (refused.value.status, refused.value.error_type) == (
        400,
        "parsing_exception",
    )
    assert says in refused.value.reason


def test_ssi_as_the_scoring_clause_of_bool_brings_its_filters_to_every_list() -> None:
    tag, red = {"term": {"tag": "cat"}}, {"term": {"colour": "red"}}
    request = find_ssi_search({"query": {"bool": {"must": [{"ssi": {"query": "a cat", "filter": red}}], "filter": [tag],
                                                  "must_not": {"term": {"hidden": True}}}}, "size": 3})
    assert request is not None and request.clause.query == "a cat" and request.size == 3
    assert request.list_filters == (tag, red) and request.must_not == ({"term": {"hidden": True}},)
    should = find_ssi_search({"query": {"bool": {"should": {"ssi": {"query": "a cat"}}, "filter": tag}}})
    assert should is not None and should.list_filters == (tag,)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"query": {"bool": {"must": [{"ssi": {"query": "x"}}, {"match": {"a": "b"}}]}}}, "only scoring clause of [bool]"),
        ({"query": {"bool": {"must": [{"ssi": {"query": "x"}}], "filter": "tag"}}}, "[bool.filter] must be a query clause"),
        ({"query": {"ssi": {"query": "x"}}, "collapse": {"field": "a"}, "rescore": {}}, "do not support [collapse], [rescore]"),
        ({"query": {"ssi": {"query": "x"}}, "search_after": [1]}, "do not support [search_after]"),
        ({"query": {"ssi": {"query": "x"}}, "sort": [{"date": "asc"}]}, "sort by [_score] (descending) only"),
        ({"query": {"ssi": {"query": "x"}}, "size": -1}, "size"),
    ],
)
def test_a_part_of_the_body_that_cannot_be_honoured_is_a_400_naming_it(body: dict[str, object], says: str) -> None:
    with pytest.raises(SearchRequestError) as refused:
        find_ssi_search(body)
    assert refused.value.status == 400 and says in refused.value.reason


def test_msearch_keeps_other_searches_byte_for_byte_and_merges_in_order() -> None:
    other = b'{"index": "b", "preference": "_local"}\n{"query" : {"match_all" : {}}}\n'
    payload = (
        ndjson({}, {"query": {"ssi": {"query": "dog"}}})
        + other
        + ndjson({"index": ["c", "d"]}, {"query": {"ssi": {"query": "cat"}}})
    )
    items = parse_msearch(payload, default_index="a")

    assert [(item.index, item.clause.clause.query if item.clause else None) for item in items] == [
        ("a", "dog"),
        ("b", None),
        ("c,d", "cat"),
    ]
    assert passthrough_payload(items) == other
    merged = merge_responses(items, [{"n": 1}, {"n": 3}], [{"n": 2}], took=7)
    assert merged == {"took": 7, "responses": [{"n": 1}, {"n": 2}, {"n": 3}]}


@pytest.mark.parametrize(
    ("payload", "says"),
    [
        (b'{}\n{"query": {}}', "terminated by a newline"),
        (b"{}\n", "a header without a search body"),
        (b'{}\n{"query": \n', "line 2: malformed JSON"),
        (b"{}\n" + b"[" * 5000 + b"]" * 5000 + b"\n", "line 2: JSON nested too deeply to read"),
        (b'{"index": "\\udfff"}\n{"query": {"ssi": {"query": "x"}}}\n', "line 1: [index] is not Unicode text"),
        (b"[]\n{}\n", "line 1: expected a JSON object"),
        (b"\n\n", "no searches"),
        (
            b'{}\n{"query": {"ssi": {"q": "x"}}}\n',
            "line 2: [ssi] query does not support [q]",
        ),
    ],
)
def test_a_bad_msearch_body_names_its_line(payload: bytes, says: str) -> None:
    with pytest.raises(SearchRequestError) as refused:
        parse_msearch(payload, default_index="a")
    assert says in refused.value.reason


def test_errors_have_the_engine_shape() -> None:
    assert error_body(413, "ssi_request_too_large", "too big") == {
        "error": {
            "root_cause": [{"type": "ssi_request_too_large", "reason": "too big"}],
            "type": "ssi_request_too_large",
            "reason": "too big",
        },
        "status": 413,
    }
