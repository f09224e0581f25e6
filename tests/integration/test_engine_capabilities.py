"""The engines carry what the rest of ssi-plugin needs.

Each test uses a real engine feature the plan depends on: composable templates,
bulk, search and atomic alias moves on both engines; ingest pipelines with
ingest-common processors and painless, and ``_reindex``, where the engine has them
(not the Elasticsearch core node). Capability detection is checked against what
the engine actually accepts.
"""

from __future__ import annotations

import pytest

from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.capabilities import capabilities
from ssi_plugin.engine.layout import DERIVE_PIPELINE, load_layout
from ssi_plugin.errors import EngineRequestError

pytestmark = pytest.mark.engine


def _install_templates(engine: EngineClient, prefix: str) -> None:
    engine.request(
        "PUT",
        f"/_component_template/{prefix}-fields",
        body={"template": {"mappings": {"properties": {"tag": {"type": "keyword"}, "caption": {"type": "text"}}}}},
    )
    engine.request(
        "PUT",
        f"/_index_template/{prefix}-template",
        body={
            "index_patterns": [f"{prefix}*"],
            "composed_of": [f"{prefix}-fields"],
            "priority": 500,
            "template": {"settings": {"number_of_shards": 1, "number_of_replicas": 0}},
        },
    )


def _remove_templates(engine: EngineClient, prefix: str) -> None:
    engine.request("DELETE", f"/_index_template/{prefix}-template")
    engine.request("DELETE", f"/_component_template/{prefix}-fields")


def test_connect_identifies_the_node(engine: EngineClient, engine_kind: str) -> None:
    assert engine.kind == engine_kind
    assert engine.info.major >= 2


def test_capabilities_predict_whether_the_engine_takes_the_derive_pipeline(engine: EngineClient, index_name: str) -> None:
    derive = next(r for r in load_layout() if r.kind == "pipeline" and r.name == DERIVE_PIPELINE)
    found = capabilities(engine)
    assert capabilities(engine) is found, "asked once per client"
    gaps = found.pipeline_gaps(derive.body)
    try:
        engine.request("PUT", f"/_ingest/pipeline/{index_name}", body=derive.body)
        accepted = True
        engine.request("DELETE", f"/_ingest/pipeline/{index_name}")
    except EngineRequestError as refused:
        accepted = False
        assert refused.status == 400
        assert any(name in str(refused) for name in [*gaps.processors, *gaps.languages]), (str(refused), gaps)
    assert accepted == (not gaps), gaps


def test_composable_template_shapes_new_indices(engine: EngineClient, index_name: str) -> None:
    _install_templates(engine, index_name)
    try:
        engine.request("PUT", f"/{index_name}-a")
        mapping = engine.request("GET", f"/{index_name}-a/_mapping")[f"{index_name}-a"]["mappings"]["properties"]
        assert mapping["tag"]["type"] == "keyword"
        assert mapping["caption"]["type"] == "text"
    finally:
        engine.request("DELETE", f"/{index_name}-a")
        _remove_templates(engine, index_name)


@pytest.mark.opensearch_only(reason="ingest processors and painless; the Elasticsearch core node lacks ingest-common and lang-painless")
def test_bulk_through_pipeline_with_painless_then_search(engine: EngineClient, index_name: str) -> None:
    pipeline = f"{index_name}-pipeline"
    engine.request(
        "PUT",
        f"/_ingest/pipeline/{pipeline}",
        body={
            "processors": [
                {"trim": {"field": "raw"}},
                {"lowercase": {"field": "raw"}},
                {"split": {"field": "raw", "separator": "\\s*,\\s*", "target_field": "tags"}},
                {"script": {"lang": "painless", "source": "ctx.tag_count = ctx.tags.size();"}},
                {"set": {"field": "pipeline_ran", "value": True}},
            ],
            "on_failure": [{"set": {"field": "ingest_error", "value": "{{ _ingest.on_failure_message }}"}}],
        },
    )
    try:
        docs = [
            {"_index": index_name, "_id": "1", "_source": {"raw": "  Dog, Frisbee , Park "}},
            {"_index": index_name, "_id": "2", "_source": {"raw": "Cat,Sofa"}},
            {"_index": index_name, "_id": "3", "_source": {"raw": 17}},
        ]
        results = list(engine.bulk(docs, pipeline=pipeline, refresh=True))
        assert [r.ok for r in results] == [True, True, True]

        hits = engine.search(index_name, {"query": {"term": {"tags.keyword": "frisbee"}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["1"]
        assert hits[0]["_source"]["tags"] == ["dog", "frisbee", "park"]
        assert hits[0]["_source"]["tag_count"] == 3
        failed = engine.request("GET", f"/{index_name}/_doc/3")["_source"]
        assert "ingest_error" in failed, "a document the pipeline cannot process keeps the error"
    finally:
        engine.request("DELETE", f"/_ingest/pipeline/{pipeline}")


def test_bulk_reports_per_document_failures(engine: EngineClient, index_name: str) -> None:
    engine.request("PUT", f"/{index_name}", body={"mappings": {"properties": {"n": {"type": "integer"}}}})
    results = list(
        engine.bulk(
            [
                {"_index": index_name, "_id": "ok", "_source": {"n": 1}},
                {"_index": index_name, "_id": "bad", "_source": {"n": "not a number"}},
            ]
        )
    )
    by_id = {r.id: r for r in results}
    assert by_id["ok"].ok and not by_id["bad"].ok
    assert by_id["bad"].status == 400
    assert "n" in str(by_id["bad"].error)


def _two_indices(engine: EngineClient, index_name: str) -> tuple[str, str, str]:
    old, new, alias = f"{index_name}-v1", f"{index_name}-v2", f"{index_name}-live"
    engine.request("PUT", f"/{old}", body={"settings": {"number_of_replicas": 0}})
    engine.request("PUT", f"/{new}", body={"settings": {"number_of_replicas": 0}})
    list(engine.bulk(({"_index": old, "_id": str(i), "_source": {"n": i}} for i in range(25)), refresh=True))
    engine.request("POST", "/_aliases", body={"actions": [{"add": {"index": old, "alias": alias}}]})
    return old, new, alias


def test_alias_moves_atomically(engine: EngineClient, index_name: str) -> None:
    old, new, alias = _two_indices(engine, index_name)
    list(engine.bulk(({"_index": new, "_id": str(i), "_source": {"n": i}} for i in range(25)), refresh=True))
    engine.request(
        "POST",
        "/_aliases",
        body={"actions": [{"remove": {"index": old, "alias": alias}}, {"add": {"index": new, "alias": alias}}]},
    )
    assert list(engine.request("GET", f"/_alias/{alias}")) == [new]
    assert engine.count(alias) == 25


@pytest.mark.opensearch_only(
    reason="_reindex; the Elasticsearch core node lacks the reindex module (ssi-plugin reindex copies client-side)"
)
def test_reindex_api_copies(engine: EngineClient, index_name: str) -> None:
    old, new, _ = _two_indices(engine, index_name)
    copied = engine.request("POST", "/_reindex", body={"source": {"index": old}, "dest": {"index": new}}, params={"refresh": "true"})
    assert copied["created"] == 25
    assert engine.count(new) == 25


def test_missing_index_is_a_clear_error(engine: EngineClient, index_name: str) -> None:
    with pytest.raises(EngineRequestError) as caught:
        engine.search(f"{index_name}-absent", {"query": {"match_all": {}}})
    assert caught.value.status == 404
    assert "index_not_found" in str(caught.value)
    assert not engine.exists(f"/{index_name}-absent")
