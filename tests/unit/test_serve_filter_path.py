"""``filter_path`` on answers the endpoint composes: cases whose expected output is what the engines wrote.

tests/integration/test_serve.py checks the same filter against the engine itself;
these keep the rules checked without one.
"""

from __future__ import annotations

from typing import Any

import pytest

from ssi_plugin.serving.filter_path import filter_response

ANSWER: dict[str, Any] = {
    "took": 3,
    "_shards": {"total": 1, "failed": 0},
    "hits": {
        "total": {"value": 2, "relation": "eq"},
        "hits": [
            {"_id": "1", "_source": {"caption": "a dog", "tags": ["x", "y"], "meta": {"a": 1, "b": {"c": 2}}, "empty": {}, "arr": []}},
            {"_id": "3", "_source": {"nested": [[{"x": 1, "y": 2}], [], {"x": 3}], "d.e": 5, "d": {"f": 6}}},
        ],
    },
}


@pytest.mark.parametrize(
    ("filter_path", "expected"),
    [
        ("hits.hits._id", {"hits": {"hits": [{"_id": "1"}, {"_id": "3"}]}}),
        ("**._id", {"hits": {"hits": [{"_id": "1"}, {"_id": "3"}]}}),
        ("hits.*.*id", {"hits": {"hits": [{"_id": "1"}, {"_id": "3"}]}}),
        ("hits.total.value, took", {"took": 3, "hits": {"total": {"value": 2}}}),
        ("hits.hits._source.tags", {"hits": {"hits": [{"_source": {"tags": ["x", "y"]}}]}}),
        ("hits.hits._source.tags.x", {}),  # scalars in an array are not fields
        ("hits.hits._source.empty", {"hits": {"hits": [{"_source": {"empty": {}}}]}}),
        ("hits.hits._source.empty.x", {}),
        ("hits.hits._sour*.me*.b", {"hits": {"hits": [{"_source": {"meta": {"b": {"c": 2}}}}]}}),
        ("hits.hits._source.nested.x", {"hits": {"hits": [{"_source": {"nested": [[{"x": 1}], {"x": 3}]}}]}}),
        ("hits.hits._source.d\\.e", {"hits": {"hits": [{"_source": {"d.e": 5}}]}}),
        ("hits.hits._source.d.e", {}),
        ("took,-took", {}),
        ("no.such.field", {}),
        ("-hits", {"took": 3, "_shards": {"total": 1, "failed": 0}}),
        ("-_shards.*,-hits.hits", {"took": 3, "hits": {"total": {"value": 2, "relation": "eq"}}}),
        (
            "hits.hits._source,-**.c,-**.x,-hits.hits._source.empty.x,-hits.hits._source.arr.x",
            {
                "hits": {
                    "hits": [
                        {"_source": {"caption": "a dog", "tags": ["x", "y"], "meta": {"a": 1}}},
                        {"_source": {"nested": [[{"y": 2}]], "d.e": 5, "d": {"f": 6}}},
                    ]
                }
            },
        ),
    ],
)
def test_filter_path_keeps_what_the_engine_keeps(filter_path: str, expected: dict[str, Any]) -> None:
    assert filter_response(ANSWER, filter_path) == expected


def test_filtering_leaves_the_answer_untouched() -> None:
    before = repr(ANSWER)
    filter_response(ANSWER, "-hits.hits._source.meta.b.c")
    assert repr(ANSWER) == before


@pytest.mark.parametrize(
    ("filter_path", "opensearch", "elasticsearch"),
    [
        (
            "-hits.hits._source.empty.x,-hits.hits._source.arr.x,-hits.hits._source.meta,-hits.hits._source.tags,-hits.hits._source.caption",
            {},
            {"empty": {}, "arr": []},
        ),
        # no path goes into them: kept on both; meta, emptied by filtering, is gone on both
        (
            "-hits.hits._source.meta.*,-hits.hits._source.tags,-hits.hits._source.caption",
            {"empty": {}, "arr": []},
            {"empty": {}, "arr": []},
        ),
    ],
)
def test_under_excludes_elasticsearch_keeps_what_was_empty_to_begin_with(
    filter_path: str, opensearch: dict[str, Any], elasticsearch: dict[str, Any]
) -> None:
    """Elasticsearch 9.2 keeps an object or array that was empty before filtering; OpenSearch 2.19 drops it."""
    first = {"hits": {"hits": [ANSWER["hits"]["hits"][0]]}}

    def source(answer: dict[str, Any]) -> dict[str, Any]:
        return answer["hits"]["hits"][0].get("_source", {})

    assert source(filter_response(first, filter_path)) == opensearch
    assert source(filter_response(first, filter_path, keep_empty=True)) == elasticsearch
