"""`ssi-plugin setup` installs the index layout once, and the pipeline derives exactly what the Python model does.

Where no pipeline can run (the Elasticsearch core node), setup says so, leaves the
pipeline out of the index settings, and ssi-plugin's own documents still carry
every slot field.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ssi_plugin.cli import cli
from ssi_plugin.datasets import ImageRecord
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.capabilities import capabilities
from ssi_plugin.engine.layout import (
    DERIVE_PIPELINE,
    SetupAction,
    install_layout,
    load_layout,
)
from ssi_plugin.errors import EngineRequestError
from ssi_plugin.identifiers import SSI, SSIRecord
from ssi_plugin.indexing import ensure_index
from ssi_plugin.indexing.documents import DOC_ID_FIELD, image_document

PIPELINE_MODULES = "the ssi-derive pipeline; the Elasticsearch core node lacks ingest-common and lang-painless"

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def layout(engine: EngineClient):
    resources = load_layout()
    install_layout(engine, resources)
    return resources


def _changes(actions: list[SetupAction]) -> list[tuple[str, str]]:
    return [(a.kind, a.action) for a in actions if a.action not in ("unchanged", "skipped")]


def test_setup_is_idempotent_and_updates_only_changed_versions(engine: EngineClient, layout) -> None:
    assert _changes(install_layout(engine, layout)) == []

    bumped = [r.model_copy(update={"body": {**r.body, "version": r.version + 1}}) if r.kind == "component-template" else r for r in layout]
    planned = install_layout(engine, bumped, dry_run=True)
    assert _changes(planned) == [("component-template", "would update")]
    assert _changes(install_layout(engine, layout)) == [], "a dry run changes nothing"

    try:
        done = install_layout(engine, bumped)
        fields = next(r for r in layout if r.kind == "component-template")
        assert [(a.name, a.action, a.installed_version, a.version) for a in done if a.action not in ("unchanged", "skipped")] == [
            (fields.name, "updated", fields.version, fields.version + 1)
        ]
    finally:
        install_layout(engine, layout)


def test_setup_says_whether_the_pipeline_runs_here(engine: EngineClient, layout, engine_url: str) -> None:
    derive = layout[0]
    gaps = capabilities(engine).pipeline_gaps(derive.body)
    report = CliRunner().invoke(cli, ["--url", engine_url, "setup"])
    assert report.exit_code == 0, report.output
    pipeline_line = next(line for line in report.output.splitlines() if DERIVE_PIPELINE in line)
    template = engine.request("GET", "/_index_template/ssi")["index_templates"][0]["index_template"]["template"]
    default_pipeline = template.get("settings", {}).get("index", {}).get("default_pipeline")
    if gaps:
        assert pipeline_line.split()[0] == "skipped"
        assert "derives the slot fields client-side" in report.output
        assert str(gaps) in report.output
        with pytest.raises(EngineRequestError) as absent:
            engine.request("GET", f"/_ingest/pipeline/{DERIVE_PIPELINE}")
        assert absent.value.status == 404
        assert default_pipeline is None, "an index must not name a pipeline the cluster cannot hold"
    else:
        assert pipeline_line.split()[0] == "unchanged"
        assert default_pipeline == DERIVE_PIPELINE


def test_documents_of_ssi_plugin_carry_the_slot_fields_on_every_engine(engine: EngineClient, layout, index_name: str) -> None:
    """An SSI index (by template or by ``ensure_index``) takes ssi-plugin's documents; term queries find their concepts."""
    by_template, by_name = f"ssi-{index_name}", f"{index_name}-named"
    try:
        assert ensure_index(engine, by_name)
        docs = []
        for index in (by_template, by_name):
            for n, identifier in enumerate(IDENTIFIERS):
                record = SSIRecord(id=str(n), ssi=SSI.parse(identifier), rationale="r.", annotator="a", version="v")
                source = image_document(ImageRecord(id=str(n), captions=("c",)), record)
                docs.append({"_index": index, "_id": str(n), "_source": source})
        assert all(r.ok for r in engine.bulk(docs, refresh=True))
        for index in (by_template, by_name):
            document = engine.request("GET", f"/{index}/_doc/3")["_source"]
            stored = document["ssi"]
            assert stored["attributes"] == ["black", "fluffy"] and "scene:living room" in stored["concepts"]
            assert document[DOC_ID_FIELD] == "3", "the id in doc values, for search lists that ask no stored field"
            hits = engine.search(index, {"query": {"term": {"ssi.objects": "frisbee"}}})["hits"]["hits"]
            assert [h["_id"] for h in hits] == ["0"]
            assert engine.search(index, {"query": {"term": {"ssi.disambiguator": 3}}})["hits"]["hits"][0]["_id"] == "2"
    finally:
        engine.request("DELETE", f"/{by_template}", params={"ignore_unavailable": "true"})


def test_ensure_index_maps_the_id_field_on_an_index_made_before_it(engine: EngineClient, layout, index_name: str) -> None:
    """An index made before the layout had ``ssi_doc_id`` gets it mapped as a keyword before a document brings it (a
    dynamic mapping would make it text, which has no doc values to read)."""
    engine.request("PUT", f"/{index_name}", body={"mappings": {"properties": {"caption": {"type": "text"}}}})
    try:
        assert not ensure_index(engine, index_name), "the index exists: nothing is created"
        mapping = engine.request("GET", f"/{index_name}/_mapping/field/{DOC_ID_FIELD}")[index_name]["mappings"]
        assert mapping[DOC_ID_FIELD]["mapping"][DOC_ID_FIELD]["type"] == "keyword"
        assert ensure_index(engine, index_name) is False, "and again: the same mapping is accepted"
    finally:
        engine.request("DELETE", f"/{index_name}", params={"ignore_unavailable": "true"})


@pytest.mark.opensearch_only(reason=PIPELINE_MODULES)
def test_setup_maps_the_id_field_on_indexes_that_run_the_pipeline(engine: EngineClient, layout, index_name: str) -> None:
    """The pipeline writes ``ssi_doc_id`` into indexes made from an earlier layout too: ``setup`` maps it there first
    (as text, a dynamic mapping, it would have no doc values); an index that already holds it as text keeps it, and
    writing to it still works."""
    older, texted = f"{index_name}-older", f"{index_name}-texted"
    engine.request("PUT", f"/{older}", body={"settings": {"index.default_pipeline": DERIVE_PIPELINE}})
    engine.request("PUT", f"/{texted}", body={"mappings": {"properties": {DOC_ID_FIELD: {"type": "text"}}}})
    try:
        report = CliRunner().invoke(cli, ["--url", engine.url, "setup"])
        assert report.exit_code == 0, report.output
        mapping = engine.request("GET", f"/{older}/_mapping/field/{DOC_ID_FIELD}")[older]["mappings"]
        assert mapping[DOC_ID_FIELD]["mapping"][DOC_ID_FIELD] == {"type": "keyword", "index": False}
        engine.request("PUT", f"/{older}/_doc/a", params={"refresh": "true"}, body={"ssi": {"id": IDENTIFIERS[0]}})
        assert engine.request("GET", f"/{older}/_doc/a")["_source"][DOC_ID_FIELD] == "a"
        assert ensure_index(engine, texted) is False, "a field mapped otherwise is left as it is"
    finally:
        engine.request("DELETE", f"/{older},{texted}", params={"ignore_unavailable": "true"})


IDENTIFIERS = [
    "objects: dog, frisbee | actions: catch, jump | scene: park",
    "objects: fire hydrant, t-shirt | attributes: red",
    "scene: beach | #3",
    "objects: cat | actions: sleep | attributes: black, fluffy | scene: living room",
]


@pytest.mark.opensearch_only(reason=PIPELINE_MODULES)
def test_pipeline_derives_the_same_fields_as_the_python_model(engine: EngineClient, layout, index_name: str) -> None:
    index = f"ssi-{index_name}"
    docs = [
        {"_index": index, "_id": str(n), "_source": {"caption": "c", "ssi": {"id": identifier, "rationale": "r."}}}
        for n, identifier in enumerate(IDENTIFIERS)
    ]
    try:
        assert all(r.ok for r in engine.bulk(docs, refresh=True))  # the index template's default pipeline runs
        for n, identifier in enumerate(IDENTIFIERS):
            document = engine.request("GET", f"/{index}/_doc/{n}")["_source"]
            assert document[DOC_ID_FIELD] == str(n), "the pipeline copies the id as ssi-plugin's writers do"
            stored = document["ssi"]
            expected = SSIRecord(id=str(n), ssi=SSI.parse(identifier), rationale="r.", annotator="a", version="v").index_fields()
            for field in ("objects", "actions", "attributes", "scene", "concepts"):
                assert stored.get(field, []) == expected[field], (identifier, field)
            assert stored.get("disambiguator") == expected.get("disambiguator") == SSI.parse(identifier).disambiguator
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})


@pytest.mark.opensearch_only(reason=PIPELINE_MODULES)
@pytest.mark.parametrize(
    ("identifier", "reason"),
    [
        ("objects: frisbee, dog", "sorted"),
        ("scene: park | objects: dog", "out of order"),
        ("colors: red", "unknown slot"),
        ("objects: Dog", "lower-case"),
        ("objects: dog | #1", "integer >= 2"),
        ("#2 | objects: dog", "last segment"),
        ("", "empty"),
    ],
)
def test_malformed_identifier_is_recorded_and_the_document_kept(
    engine: EngineClient, layout, index_name: str, identifier: str, reason: str
) -> None:
    index = f"ssi-{index_name}"
    try:
        results = list(
            engine.bulk([{"_index": index, "_id": "x", "_source": {"caption": "kept", "ssi": {"id": identifier}}}], refresh=True)
        )
        assert results[0].ok
        source = engine.request("GET", f"/{index}/_doc/x")["_source"]
        assert source["caption"] == "kept"
        assert reason in source["ssi_error"]["message"]
        assert "concepts" not in source["ssi"]
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
