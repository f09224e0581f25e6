"""The index layout of index_templates/, installed idempotently.

Files are named ``<name>.<kind>.json`` with kind ``pipeline``,
``component-template`` or ``index-template``; each carries a ``version``.
``install_layout`` compares that version with what the cluster holds and
writes only what differs, pipelines first (templates refer to them).

A cluster that cannot run a pipeline (the Elasticsearch core node has no ingest
processor) gets the layout without it: ``fit_layout`` drops the pipeline and the
``default_pipeline`` settings naming it, and the setup report says so. Documents
written by ssi-plugin carry the derived slot fields themselves, so nothing is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ssi_plugin.engine import vectors
from ssi_plugin.engine.capabilities import Capabilities, capabilities
from ssi_plugin.engine.client import EngineClient
from ssi_plugin.errors import ConfigError, EngineRequestError
from ssi_plugin.resources import project_dir

ResourceKind = Literal["pipeline", "component-template", "index-template"]
ActionName = Literal["created", "updated", "unchanged", "would create", "would update", "skipped"]
_INSTALL_ORDER: tuple[ResourceKind, ...] = ("pipeline", "component-template", "index-template")
_PATHS: dict[ResourceKind, str] = {
    "pipeline": "/_ingest/pipeline/{}",
    "component-template": "/_component_template/{}",
    "index-template": "/_index_template/{}",
}

DERIVE_PIPELINE = "ssi-derive"
DOC_ID_FIELD = "ssi_doc_id"
"""The document's own ``_id``, as a keyword with doc values only: a search list reads its hits' ids from doc values
and asks for no stored field (``_id`` is one, read from the block that holds the whole ``_source``; with caption
vectors in it, that was 45 % of the engine's CPU per ``ssi`` query). Written by ssi-plugin's writers and by the
``ssi-derive`` pipeline, so documents of other writers carry it too."""
DOC_ID_MAPPING = {"type": "keyword", "index": False}
CLIENT_SIDE_NOTE = "ssi-plugin derives the slot fields client-side"
_PIPELINE_SETTINGS = ("default_pipeline", "final_pipeline")


class LayoutResource(BaseModel):
    kind: ResourceKind
    name: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        return _PATHS[self.kind].format(self.name)

    @property
    def version(self) -> int | None:
        return self.body.get("version")


class SetupAction(BaseModel):
    kind: ResourceKind
    name: str
    action: ActionName
    installed_version: int | None
    version: int | None
    note: str | None = None
    """Why a resource was skipped."""
    request: dict[str, Any] | None = None
    """The request sent (or, in a dry run, that would be sent): method, path, body."""


class FittedLayout(BaseModel):
    """The layout a given cluster gets: its resources, and the pipelines left out with the reason."""

    resources: list[LayoutResource]
    skipped: dict[str, str]


def load_layout(folder: Path | None = None, *, index_patterns: list[str] | None = None) -> list[LayoutResource]:
    """Read the layout files in install order; ``index_patterns`` overrides the index template's patterns."""
    folder = folder or project_dir("index_templates")
    resources = []
    for file in sorted(folder.glob("*.json")):
        name, _, kind = file.name.removesuffix(".json").partition(".")
        if kind not in _PATHS:
            raise ConfigError(f"{file}: name must be <name>.<pipeline|component-template|index-template>.json")
        try:
            body = json.loads(file.read_text())
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{file} is not valid JSON: {exc}") from None
        if kind == "index-template" and index_patterns:
            body = {**body, "index_patterns": index_patterns}
        resources.append(LayoutResource(kind=kind, name=name, body=body))
    return sorted(resources, key=lambda r: _INSTALL_ORDER.index(r.kind))


def fit_layout(resources: list[LayoutResource], cluster: Capabilities) -> FittedLayout:
    """Leave out the pipelines ``cluster`` cannot run, and the index settings that name them; where the cluster
    has vector fields, map the caption vector (``ingest --vectors`` fills it; documents without one are fine)."""
    skipped = {}
    for resource in resources:
        if resource.kind == "pipeline" and (gaps := cluster.pipeline_gaps(resource.body)):
            skipped[resource.name] = f"this cluster has {gaps}; {CLIENT_SIDE_NOTE}"
    fitted = []
    for resource in resources:
        if resource.kind == "pipeline" and resource.name in skipped:
            continue
        template = resource.body.get("template", {})
        if resource.kind == "index-template" and skipped:
            settings = _without_pipelines(template.get("settings", {}), set(skipped))
            resource = resource.model_copy(update={"body": {**resource.body, "template": {**template, "settings": settings}}})
        elif resource.kind == "component-template" and cluster.vectors and "mappings" in template:
            # the setting travels with the field: OpenSearch checks a component template on its own
            mappings = template["mappings"]
            properties = {**mappings.get("properties", {}), vectors.VECTOR_FIELD: vectors.field_mapping(cluster.vectors)}
            settings = {**template.get("settings", {}), **vectors.index_settings(cluster.vectors)}
            body = {**resource.body, "template": {**template, "mappings": {**mappings, "properties": properties},
                                                  **({"settings": settings} if settings else {})}}
            resource = resource.model_copy(update={"body": body})
        fitted.append(resource)
    return FittedLayout(resources=fitted, skipped=skipped)


def cluster_layout(engine: EngineClient, resources: list[LayoutResource] | None = None) -> FittedLayout:
    """The layout (index_templates/ by default) fitted to what ``engine`` can run."""
    return fit_layout(resources if resources is not None else load_layout(), capabilities(engine))


def _without_pipelines(settings: dict[str, Any], pipelines: set[str]) -> dict[str, Any]:
    """Index settings without ``[index.]default_pipeline`` / ``final_pipeline`` naming one of ``pipelines``."""
    names = {prefix + key for key in _PIPELINE_SETTINGS for prefix in ("", "index.")}
    kept = {key: value for key, value in settings.items() if not (key in names and value in pipelines)}
    if isinstance(kept.get("index"), dict):
        kept["index"] = _without_pipelines(kept["index"], pipelines)
    return kept


def _setting(settings: dict[str, Any], key: str) -> str | None:
    """One index setting, written flat (``index.default_pipeline``) or nested, as engines answer it; as a string
    (engines answer ``true`` as ``"true"``)."""
    index = settings.get("index")
    nested = index if isinstance(index, dict) else {}
    value = settings.get(f"index.{key}", settings.get(key, nested.get(key)))
    return None if value is None else str(value).lower()


def installed(engine: EngineClient, resource: LayoutResource) -> dict[str, Any] | None:
    """The body the cluster holds for the resource, None when it has none."""
    try:
        answer = engine.request("GET", resource.path)
    except EngineRequestError as exc:
        if exc.status == 404:
            return None
        raise
    if resource.kind == "pipeline":
        return answer[resource.name]
    key = "component_templates" if resource.kind == "component-template" else "index_templates"
    inner = "component_template" if resource.kind == "component-template" else "index_template"
    return answer[key][0][inner]


def _up_to_date(resource: LayoutResource, held: dict[str, Any]) -> bool:
    """Same version, and the same parts fitted to the cluster (it may have gained or lost pipelines or vectors)."""
    if held.get("version") != resource.version:
        return False
    wanted, has = resource.body.get("template", {}), held.get("template", {})
    if resource.kind == "component-template":
        field = vectors.VECTOR_FIELD
        return wanted.get("mappings", {}).get("properties", {}).get(field) == has.get("mappings", {}).get("properties", {}).get(field)
    if resource.kind == "index-template":
        return all(_setting(wanted.get("settings", {}), key) == _setting(has.get("settings", {}), key)
                   for key in _PIPELINE_SETTINGS)
    return True


def install_layout(
    engine: EngineClient, resources: list[LayoutResource] | None = None, *, dry_run: bool = False
) -> list[SetupAction]:
    """Install what is missing or differs; report one action per resource, skipped pipelines included."""
    resources = resources if resources is not None else load_layout()
    layout = cluster_layout(engine, resources)
    fitted = {(r.kind, r.name): r for r in layout.resources}
    actions = []
    for original in resources:
        if original.kind == "pipeline" and original.name in layout.skipped:
            actions.append(
                SetupAction(kind=original.kind, name=original.name, action="skipped", installed_version=None,
                            version=original.version, note=layout.skipped[original.name])
            )
            continue
        resource = fitted[(original.kind, original.name)]
        held = installed(engine, resource)
        request = None
        action: ActionName
        if held is not None and _up_to_date(resource, held):
            action = "unchanged"
        else:
            request = {"method": "PUT", "path": resource.path, "body": resource.body}
            exists = held is not None
            action = ("would update" if exists else "would create") if dry_run else ("updated" if exists else "created")
            if not dry_run:
                engine.request("PUT", resource.path, body=resource.body)
        actions.append(
            SetupAction(kind=resource.kind, name=resource.name, action=action,
                        installed_version=None if held is None else held.get("version"), version=resource.version, request=request)
        )
    if not dry_run and DERIVE_PIPELINE not in layout.skipped:
        _map_doc_ids_where_the_pipeline_runs(engine)
    return actions


def map_doc_ids(engine: EngineClient, index: str) -> bool:
    """Map ``DOC_ID_FIELD`` on ``index`` (a name, a comma-separated list) made before the layout had it, before a
    document brings it (a dynamic mapping would make it text); false where the cluster refuses (an index that already
    holds it as something else keeps it, and its searches read the stored ids)."""
    try:
        engine.request("PUT", f"/{index}/_mapping", body={"properties": {DOC_ID_FIELD: DOC_ID_MAPPING}})
    except EngineRequestError:
        return False
    return True


def _map_doc_ids_where_the_pipeline_runs(engine: EngineClient) -> None:
    """``map_doc_ids`` on every index whose default pipeline is ``DERIVE_PIPELINE`` and that lacks the field: from its
    version 2 on, the pipeline writes it into indexes made from an earlier layout too. Two reads when all have it."""
    try:
        settings = engine.request("GET", "/_all/_settings/index.default_pipeline") or {}
        mapped = engine.request("GET", f"/_all/_mapping/field/{DOC_ID_FIELD}") or {}
    except EngineRequestError:  # not allowed to read every index's settings: each index is mapped when it is written to
        return
    for index, held in settings.items():
        has_field = bool(mapped.get(index, {}).get("mappings"))
        if not has_field and _setting(held.get("settings", {}), "default_pipeline") == DERIVE_PIPELINE:
            map_doc_ids(engine, index)


def index_body(resources: list[LayoutResource] | None = None) -> dict[str, Any]:
    """Mappings and settings for creating an SSI index by name, whatever the template's patterns."""
    resources = resources if resources is not None else load_layout()
    mappings: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for resource in resources:
        template = resource.body.get("template", {})
        if resource.kind == "component-template":
            mappings.setdefault("properties", {}).update(template.get("mappings", {}).get("properties", {}))
        if resource.kind in ("component-template", "index-template"):  # in install order: the index template wins
            settings.update(template.get("settings", {}))
    return {"mappings": mappings, "settings": settings}
