"""`ssi-plugin setup` installs the index layout once, and the pipeline derives exactly what the Python model does."""

from __future__ import annotations

import pytest

from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.layout import DERIVE_PIPELINE, install_layout, load_layout
from ssi_plugin.identifiers import SSI, SSIRecord

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def layout(engine: EngineClient):
    resources = load_layout()
    install_layout(engine, resources)
    return resources


def test_setup_is_idempotent_and_updates_only_changed_versions(engine: EngineClient, layout) -> None:
    assert {a.action for a in install_layout(engine, layout)} == {"unchanged"}

    bumped = [r.model_copy(update={"body": {**r.body, "version": r.version + 1}}) if r.kind == "pipeline" else r for r in layout]
    planned = install_layout(engine, bumped, dry_run=True)
    assert [(a.kind, a.action) for a in planned if a.action != "unchanged"] == [("pipeline", "would update")]
    assert {a.action for a in install_layout(engine, layout)} == {"unchanged"}, "a dry run changes nothing"

    try:
        done = install_layout(engine, bumped)
        assert [(a.name, a.action, a.installed_version, a.version) for a in done if a.action != "unchanged"] == [
            (DERIVE_PIPELINE, "updated", layout[0].version, layout[0].version + 1)
        ]
    finally:
        install_layout(engine, layout)


IDENTIFIERS = [
    "objects: dog, frisbee | actions: catch, jump | scene: park",
    "objects: fire hydrant, t-shirt | attributes: red",
    "scene: beach | #3",
    "objects: cat | actions: sleep | attributes: black, fluffy | scene: living room",
]


def test_pipeline_derives_the_same_fields_as_the_python_model(engine: EngineClient, layout, index_name: str) -> None:
    index = f"ssi-{index_name}"
    docs = [
        {"_index": index, "_id": str(n), "_source": {"caption": "c", "ssi": {"id": identifier, "rationale": "r."}}}
        for n, identifier in enumerate(IDENTIFIERS)
    ]
    try:
        assert all(r.ok for r in engine.bulk(docs, refresh=True))  # the index template's default pipeline runs
        for n, identifier in enumerate(IDENTIFIERS):
            stored = engine.request("GET", f"/{index}/_doc/{n}")["_source"]["ssi"]
            expected = SSIRecord(id=str(n), ssi=SSI.parse(identifier), rationale="r.", annotator="a", version="v").index_fields()
            for field in ("objects", "actions", "attributes", "scene", "concepts"):
                assert stored.get(field, []) == expected[field], (identifier, field)
            assert stored.get("disambiguator") == SSI.parse(identifier).disambiguator
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})


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
        results = list(engine.bulk([{"_index": index, "_id": "x", "_source": {"caption": "kept", "ssi": {"id": identifier}}}], refresh=True))
        assert results[0].ok
        source = engine.request("GET", f"/{index}/_doc/x")["_source"]
        assert source["caption"] == "kept"
        assert reason in source["ssi_error"]["message"]
        assert "concepts" not in source["ssi"]
    finally:
        engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
