"""What a connected cluster can run, asked once per client: ingest pipelines, and vector fields.

A full OpenSearch or Elasticsearch distribution runs the ``ssi-derive`` ingest
pipeline (script, set and remove processors, painless conditions and scripts,
mustache templates in ``on_failure``). The Elasticsearch core node
(integration/elasticsearch/) has the ingest framework but no processor and no
script language, so ssi-plugin must not install the pipeline there nor point an
index at it: documents are complete client-side anyway
(``ssi_plugin.indexing.documents.image_document``).

Both engines list the processor types of every node under
``GET /_nodes/ingest`` and the script languages under ``GET /_script_language``.
A cluster that will not say (a user without the ``monitor`` privilege) is taken
to be a full distribution: installing the pipeline then fails with the engine's
own clear error if it cannot run.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ssi_plugin.engine.client import EngineClient
from ssi_plugin.engine.vectors import KNN_PLUGIN
from ssi_plugin.errors import EngineAuthError, EngineRequestError

DEFAULT_SCRIPT_LANGUAGE = "painless"
"""What ``script`` processors and ``if`` conditions run in when they name no ``lang``."""


class PipelineGaps(BaseModel):
    """What a cluster lacks to run one pipeline; falsy when it lacks nothing."""

    processors: list[str]
    languages: list[str]

    def __bool__(self) -> bool:
        return bool(self.processors or self.languages)

    def __str__(self) -> str:
        parts = [
            f"{what} {_listed(names)}"
            for what, names in (("ingest processor", self.processors), ("script language", self.languages))
            if names
        ]
        return "no " + " and no ".join(parts) if parts else "everything it needs"


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


class Capabilities(BaseModel):
    """Ingest processor types and script languages of a cluster; None where the cluster would not say."""

    model_config = ConfigDict(frozen=True)

    processors: frozenset[str] | None
    script_languages: frozenset[str] | None
    vectors: Literal["elasticsearch", "opensearch"] | None = Field(
        default=None, description="Whose vector fields and kNN search the cluster has (the core of Elasticsearch; "
        "OpenSearch's k-NN plugin on every node); None: none.")

    def pipeline_gaps(self, pipeline: Mapping[str, Any]) -> PipelineGaps:
        """What this cluster lacks to run ``pipeline`` (a pipeline body)."""
        processors, languages = pipeline_needs(pipeline)
        return PipelineGaps(
            processors=sorted(processors - self.processors) if self.processors is not None else [],
            languages=sorted(languages - self.script_languages) if self.script_languages is not None else [],
        )


def pipeline_needs(pipeline: Mapping[str, Any]) -> tuple[frozenset[str], frozenset[str]]:
    """(processor types, script languages) a pipeline body uses, nested ``on_failure`` and ``foreach`` included.

    Languages: a ``script`` processor's ``lang`` (painless by default), painless for
    every ``if`` condition, mustache for any ``{{ template }}`` in a processor's options.
    """
    processors: set[str] = set()
    languages: set[str] = set()
    for kind, options in _processors(pipeline):
        processors.add(kind)
        if kind == "script":
            languages.add(str(options.get("lang", DEFAULT_SCRIPT_LANGUAGE)))
        condition = options.get("if")
        if isinstance(condition, str):
            languages.add(DEFAULT_SCRIPT_LANGUAGE)
        elif isinstance(condition, Mapping):
            languages.add(str(condition.get("lang", DEFAULT_SCRIPT_LANGUAGE)))
        if any("{{" in text for text in _strings(options, skip=("if", "source", "on_failure", "processor"))):
            languages.add("mustache")
    return frozenset(processors), frozenset(languages)


def _processors(body: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for key in ("processors", "on_failure"):
        for entry in body.get(key) or ():
            for kind, options in entry.items():
                options = options if isinstance(options, Mapping) else {}
                yield kind, options
                yield from _processors(options)
                if isinstance(options.get("processor"), Mapping):  # foreach
                    yield from _processors({"processors": [options["processor"]]})


def _strings(value: Any, *, skip: tuple[str, ...] = ()) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if key not in skip:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


_CACHE: weakref.WeakKeyDictionary[EngineClient, Capabilities] = weakref.WeakKeyDictionary()


def capabilities(engine: EngineClient) -> Capabilities:
    """The cluster's ingest processors and script languages (two requests, then cached for this client)."""
    cached = _CACHE.get(engine)
    if cached is None:
        cached = _CACHE[engine] = Capabilities(processors=_node_processors(engine), script_languages=_script_languages(engine),
                                               vectors=_vectors(engine))
    return cached


def _vectors(engine: EngineClient) -> Literal["elasticsearch", "opensearch"] | None:
    """Elasticsearch always; OpenSearch when every node runs the k-NN plugin (a cluster that will not say: none)."""
    if engine.kind == "elasticsearch":
        return "elasticsearch"
    try:
        nodes = engine.request("GET", "/_nodes/plugins", params={"filter_path": "nodes.*.plugins.classname"})
    except (EngineAuthError, EngineRequestError):
        return None
    per_node = [{plugin.get("classname") for plugin in node.get("plugins", ())} for node in (nodes or {}).get("nodes", {}).values()]
    return "opensearch" if per_node and all(KNN_PLUGIN in plugins for plugins in per_node) else None


def _node_processors(engine: EngineClient) -> frozenset[str] | None:
    """Processor types every node has (a pipeline is refused unless all ingest nodes can run it)."""
    try:
        nodes = engine.request("GET", "/_nodes/ingest", params={"filter_path": "nodes.*.ingest.processors"})
    except (EngineAuthError, EngineRequestError):
        return None
    per_node = [
        frozenset(p["type"] for p in node.get("ingest", {}).get("processors", ())) for node in (nodes or {}).get("nodes", {}).values()
    ]
    return frozenset.intersection(*per_node) if per_node else frozenset()


def _script_languages(engine: EngineClient) -> frozenset[str] | None:
    try:
        answer = engine.request("GET", "/_script_language")
    except (EngineAuthError, EngineRequestError):
        return None
    return frozenset(context["language"] for context in (answer or {}).get("language_contexts", ()))
