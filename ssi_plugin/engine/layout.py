"""The index layout of index_templates/, installed idempotently.

Files are named ``<name>.<kind>.json`` with kind ``pipeline``,
``component-template`` or ``index-template``; each carries a ``version``.
``install_layout`` compares that version with what the cluster holds and
writes only what differs, pipelines first (templates refer to them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from ssi_plugin.engine.client import EngineClient
from ssi_plugin.errors import ConfigError, EngineRequestError
from ssi_plugin.resources import project_dir

ResourceKind = Literal["pipeline", "component-template", "index-template"]
_INSTALL_ORDER: tuple[ResourceKind, ...] = ("pipeline", "component-template", "index-template")
_PATHS: dict[ResourceKind, str] = {
    "pipeline": "/_ingest/pipeline/{}",
    "component-template": "/_component_template/{}",
    "index-template": "/_index_template/{}",
}

DERIVE_PIPELINE = "ssi-derive"


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
    action: Literal["created", "updated", "unchanged", "would create", "would update"]
    installed_version: int | None
    version: int | None


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


def installed_version(engine: EngineClient, resource: LayoutResource) -> tuple[bool, int | None]:
    """(exists, version) of the resource on the cluster."""
    try:
        answer = engine.request("GET", resource.path)
    except EngineRequestError as exc:
        if exc.status == 404:
            return False, None
        raise
    if resource.kind == "pipeline":
        return True, answer[resource.name].get("version")
    key = "component_templates" if resource.kind == "component-template" else "index_templates"
    inner = "component_template" if resource.kind == "component-template" else "index_template"
    return True, answer[key][0][inner].get("version")


def install_layout(
    engine: EngineClient, resources: list[LayoutResource] | None = None, *, dry_run: bool = False
) -> list[SetupAction]:
    """Install what is missing or has another version; report one action per resource."""
    actions = []
    for resource in resources if resources is not None else load_layout():
        exists, version = installed_version(engine, resource)
        if exists and version == resource.version:
            action = "unchanged"
        else:
            action = ("would update" if exists else "would create") if dry_run else ("updated" if exists else "created")
            if not dry_run:
                engine.request("PUT", resource.path, body=resource.body)
        actions.append(
            SetupAction(kind=resource.kind, name=resource.name, action=action, installed_version=version, version=resource.version)
        )
    return actions


def index_body(resources: list[LayoutResource] | None = None) -> dict[str, Any]:
    """Mappings and settings for creating an SSI index by name, whatever the template's patterns."""
    resources = resources if resources is not None else load_layout()
    mappings: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for resource in resources:
        template = resource.body.get("template", {})
        if resource.kind == "component-template":
            mappings.setdefault("properties", {}).update(template.get("mappings", {}).get("properties", {}))
        elif resource.kind == "index-template":
            settings.update(template.get("settings", {}))
    return {"mappings": mappings, "settings": settings}
