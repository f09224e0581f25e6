"""Which layout a cluster gets, from what it can run (no engine: capabilities are given)."""

from __future__ import annotations

from ssi_plugin.engine.capabilities import Capabilities, pipeline_needs
from ssi_plugin.engine.layout import (
    DERIVE_PIPELINE,
    fit_layout,
    index_body,
    load_layout,
)

FULL = Capabilities(processors=frozenset({"script", "set", "remove", "trim"}), script_languages=frozenset({"painless", "mustache"}))
CORE = Capabilities(processors=frozenset(), script_languages=frozenset())
UNKNOWN = Capabilities(processors=None, script_languages=None)


def _template_settings(resources) -> dict:
    return next(r for r in resources if r.kind == "index-template").body["template"]["settings"]


def test_the_derive_pipeline_needs_script_set_remove_painless_and_mustache() -> None:
    derive = next(r for r in load_layout() if r.name == DERIVE_PIPELINE)
    assert pipeline_needs(derive.body) == ({"script", "set", "remove"}, {"painless", "mustache"})


def test_nested_processors_conditions_and_languages_count() -> None:
    body = {
        "processors": [
            {"foreach": {"field": "f", "processor": {"lowercase": {"field": "_ingest._value", "if": "ctx.f != null"}}}},
            {"script": {"lang": "expression", "source": "1", "on_failure": [{"drop": {}}]}},
            {"set": {"field": "a", "value": "plain", "if": {"lang": "mustache", "source": "x"}}},
        ]
    }
    assert pipeline_needs(body) == ({"foreach", "lowercase", "script", "drop", "set"}, {"painless", "expression", "mustache"})


def test_a_full_cluster_gets_the_layout_as_written() -> None:
    layout = load_layout()
    fitted = fit_layout(layout, FULL)
    assert fitted.skipped == {}
    assert fitted.resources == layout
    assert index_body(fitted.resources)["settings"] == {"index.default_pipeline": DERIVE_PIPELINE}


def test_a_core_cluster_gets_no_pipeline_and_no_setting_naming_it() -> None:
    layout = load_layout()
    fitted = fit_layout(layout, CORE)
    assert [r.kind for r in fitted.resources] == ["component-template", "index-template"]
    reason = fitted.skipped[DERIVE_PIPELINE]
    assert reason == (
        "this cluster has no ingest processor remove, script or set and no script language mustache or painless; "
        "ssi-plugin derives the slot fields client-side"
    )
    assert _template_settings(fitted.resources) == {}
    assert index_body(fitted.resources)["settings"] == {}
    assert index_body(fitted.resources)["mappings"] == index_body(layout)["mappings"]
    assert _template_settings(layout) == {"index.default_pipeline": DERIVE_PIPELINE}, "the files' resources are not changed"


def test_a_missing_language_alone_skips_the_pipeline() -> None:
    fitted = fit_layout(load_layout(), FULL.model_copy(update={"script_languages": frozenset({"painless"})}))
    assert fitted.skipped[DERIVE_PIPELINE].startswith("this cluster has no script language mustache;")


def test_a_cluster_that_will_not_say_is_taken_as_full() -> None:
    assert fit_layout(load_layout(), UNKNOWN).skipped == {}


def test_nested_and_other_pipeline_settings_are_kept_or_dropped_by_name() -> None:
    layout = load_layout()
    template = next(r for r in layout if r.kind == "index-template")
    settings = {"index": {"default_pipeline": DERIVE_PIPELINE, "final_pipeline": "someone-elses", "number_of_replicas": 0}}
    nested = template.model_copy(update={"body": {**template.body, "template": {"settings": settings}}})
    fitted = fit_layout([r if r.kind != "index-template" else nested for r in layout], CORE)
    assert _template_settings(fitted.resources) == {"index": {"final_pipeline": "someone-elses", "number_of_replicas": 0}}


def test_a_cluster_with_vector_fields_gets_the_caption_vector_field_in_its_own_mapping() -> None:
    for engine, mapped, settings in (("opensearch", "knn_vector", {"index.knn": True}), ("elasticsearch", "dense_vector", {})):
        fitted = fit_layout(load_layout(), FULL.model_copy(update={"vectors": engine})).resources
        body = index_body(fitted)
        field = body["mappings"]["properties"]["caption_vector"]
        assert (field["type"], field.get("dims", field.get("dimension"))) == (mapped, 384)
        assert body["settings"] == {**_template_settings(load_layout()), **settings}
        if engine == "opensearch":  # faiss and nmslib need native libraries; Lucene's HNSW is in every k-NN plugin
            assert field["method"] == {"name": "hnsw", "engine": "lucene", "space_type": "cosinesimil"}
    assert "caption_vector" not in index_body(fit_layout(load_layout(), FULL).resources)["mappings"]["properties"]
