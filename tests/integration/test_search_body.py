"""Every part of a search body with an ``ssi`` clause, on both engines: honoured as the engine means it, or refused
with a 400 that names it. Nothing is dropped silently: a facet sidebar or a filter shows what the engine would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import InputError
from ssi_plugin.search import SSISearcher
from ssi_plugin.search.request import PARTS

pytestmark = pytest.mark.engine

SSI = {"ssi": {"query": "a dog in the park"}}


@pytest.fixture
def searcher(engine: EngineClient, index_name: str, tmp_path: Path) -> Iterator[SSISearcher]:
    folder = index_with_generator(engine, index_name, tmp_path)
    searcher = SSISearcher.open(engine, index_name, model_dir=folder)
    yield searcher
    searcher.close()


def _ask(searcher: SSISearcher, **body: Any) -> dict[str, Any]:
    return searcher.search_request(searcher.index, {"query": SSI, **body}, {})


def _ids(answer: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def test_bool_filters_apply_to_every_list_so_every_hit_passes(searcher: SSISearcher, engine: EngineClient) -> None:
    dogs = {"term": {"ssi.objects": "dog"}}
    body = {"query": {"bool": {"must": [SSI], "filter": [dogs], "must_not": [{"term": {"ssi.scene": "beach"}}]}}, "size": 5}
    answer = searcher.search_request(searcher.index, body, {})
    assert _ids(answer) == ["img-1"]  # the only dog not on the beach
    inside = searcher.search_request(searcher.index, {"query": {"ssi": {**SSI["ssi"], "filter": dogs}}}, {})
    assert sorted(_ids(inside)) == ["img-1", "img-2"]
    direct = engine.search(searcher.index, {"query": {"bool": {"filter": [dogs]}}})["hits"]["total"]["value"]
    assert inside["hits"]["total"] == {"value": direct, "relation": "eq"}


def test_aggregations_count_every_matched_document_and_post_filter_only_narrows_the_hits(searcher: SSISearcher) -> None:
    everything = _ask(searcher, size=10)
    answer = _ask(searcher, size=10, aggs={"scenes": {"terms": {"field": "ssi.scene"}}},
                  post_filter={"term": {"ssi.scene": "park"}})
    buckets = {bucket["key"]: bucket["doc_count"] for bucket in answer["aggregations"]["scenes"]["buckets"]}
    matched = set(_ids(everything))
    expected: dict[str, int] = {}
    for image in matched:
        for scene in IMAGES[image][0].scene:
            expected[scene] = expected.get(scene, 0) + 1
    assert buckets == expected  # over every matched document, before post_filter
    assert _ids(answer) == ["img-1"] and answer["hits"]["total"]["value"] == 1
    assert "aggregations" not in everything


def test_the_rest_of_the_body(searcher: SSISearcher) -> None:
    ranked = _ask(searcher, size=10)
    scores = [hit["_score"] for hit in ranked["hits"]["hits"]]
    above = _ask(searcher, size=10, min_score=scores[1])
    assert _ids(above) == [i for i, score in zip(_ids(ranked), scores, strict=True) if score >= scores[1]]
    page = _ask(searcher, size=1, **{"from": 1})
    assert _ids(page) == _ids(ranked)[1:2]
    assert "total" not in _ask(searcher, track_total_hits=False)["hits"]
    assert _ask(searcher, size=10, track_total_hits=1)["hits"]["total"] == {"value": 1, "relation": "gte"}
    assert _ids(_ask(searcher, sort=["_score"], size=10)) == _ids(ranked)

    explained = _ask(searcher, explain=True, size=2)["hits"]["hits"][0]
    details = explained["_explanation"]["details"]
    assert explained["_explanation"]["value"] == explained["_score"]
    assert sum(detail["value"] for detail in details) == pytest.approx(explained["_score"])
    assert all(detail["description"].split(" list")[0] in {"exact", "concepts", "terms", "meaning", "bm25"} for detail in details)

    highlighted = _ask(searcher, highlight={"fields": {"caption": {}}}, size=1)["hits"]["hits"][0]
    assert "<em>" in highlighted["highlight"]["caption"][0]
    fielded = _ask(searcher, fields=["caption"], _source=False, version=True, size=1)["hits"]["hits"][0]
    assert fielded["fields"] == {"caption": [IMAGES[fielded["_id"]][1]]} and "_source" not in fielded and fielded["_version"] == 1
    assert not _ask(searcher, timeout="10s")["timed_out"]


@pytest.mark.parametrize("part", ["search_after", "collapse", "rescore", "suggest", "knn", "script_fields", "profile"])
def test_parts_that_are_not_honoured_are_refused_by_name(searcher: SSISearcher, part: str) -> None:
    with pytest.raises(InputError, match=rf"\[{part}\]"):
        _ask(searcher, **{part: {}})


def test_the_readme_table_lists_every_part() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for part in PARTS:
        assert f"| {part} |" in readme, part
