"""A standard search body that holds an ``ssi`` clause, read part by part: each is honoured or refused, never dropped.

Where the clause may sit (what frontends send):

- ``{"query": {"ssi": {...}}}``;
- ``{"query": {"bool": {"must": [{"ssi": {...}}], "filter": [...], "must_not": [...]}}}`` (or ``should``): the
  ``ssi`` clause is the one scoring clause; ``filter`` and ``must_not`` apply to every list the searcher asks for,
  so the hits all pass them. The clause's own ``filter`` (as ``knn`` has on both engines) applies alike.

The rest of the body, as the engine means it (``PARTS`` lists them for the README's table):
``size``/``from``; ``_source``, ``fields``, ``docvalue_fields``, ``stored_fields``, ``version``,
``seq_no_primary_term`` (asked of the page's documents once the lists are fused, so hits carry them);
``timeout`` (each search's; ``timed_out`` if one timed out); ``track_total_hits`` (``hits.total`` counts the
documents the lists found, ``gte`` when a list was cut at its window); ``min_score`` (on the fused score);
``sort`` by ``_score`` only; ``explain`` (each hit's ``_explanation``: every list's rank and share of the fused
score); ``post_filter`` (hits only); ``aggs``/``aggregations`` (computed by the engine over every document the
lists found, before ``post_filter``); ``highlight`` (on the hits shown, against the query text unless a
``highlight_query`` is given). Anything else is refused with a 400 that names it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ssi_plugin.errors import InputError, describe_validation_error
from ssi_plugin.search.options import SSIQuery

HIT_PARTS = ("_source", "fields", "docvalue_fields", "stored_fields", "version", "seq_no_primary_term")
"""Body parts that say what each hit carries: asked as they are of the page's documents, once the lists are fused."""

PARTS: dict[str, str] = {
    "query": "an `ssi` clause, alone or as the scoring clause of `bool` (`must`/`should`) beside `filter`/`must_not`",
    "size, from": "the page of the fused ranking",
    "_source, fields, docvalue_fields, stored_fields, version, seq_no_primary_term":
        "asked of the page's documents once the lists are fused; hits carry them (`stored_fields: _none_` is refused: "
        "fusion needs each hit's `_id`)",
    "timeout": "each search's timeout (the lists' and the page's); `timed_out` when one timed out",
    "track_total_hits": "`hits.total` counts the documents the lists found (`gte` when a list was cut at its window); "
                        "`false` (or `-1`) leaves it out",
    "min_score": "on the fused score",
    "sort": "`_score` (descending) only",
    "explain": "each hit's `_explanation`: every list's rank and share of the fused score",
    "post_filter": "hits only (aggregations do not see it)",
    "aggs, aggregations": "computed by the engine over every document the lists found (all pages, before `post_filter`)",
    "highlight": "on the hits shown, against the query text unless `highlight_query` is given",
    "search_after, collapse, rescore, suggest, knn, rank, retriever, pit, script_fields, indices_boost, "
    "terminate_after, profile, runtime_mappings, stats, ext, ...": "refused: 400 naming the part",
}
"""Every part of a search body with an ``ssi`` clause, and what is done with it (the README's table)."""

_HONOURED = frozenset({"query", "size", "from", *HIT_PARTS, "timeout", "track_total_hits", "min_score", "sort", "explain",
                       "post_filter", "aggs", "aggregations", "highlight"})
_BOOL_SCORING = ("must", "should")
MAX_DEPTH = 100
"""Deepest nesting of objects and arrays an ``ssi`` search body may have: far more than any real query, and far less
than what overflows the engines' parsers (OpenSearch drops the connection at about 350 ``bool`` queries one inside another)."""


class SSISearchRequest(BaseModel):
    """What the searcher does with one search body."""

    model_config = ConfigDict(frozen=True)

    clause: SSIQuery
    filters: tuple[dict[str, Any], ...] = Field(default=(), description="The body's filters (beside the clause's own).")
    must_not: tuple[dict[str, Any], ...] = Field(default=(), description="No list may match these.")
    size: int = Field(default=10, ge=0)
    offset: int = Field(default=0, ge=0)
    hit_parts: dict[str, Any] = Field(default_factory=dict, description="What each hit carries (HIT_PARTS of the body).")
    timeout: Any = Field(default=None, description="Each search's timeout, passed as it is: the engine reads it.")
    track_total_hits: bool | Annotated[int, Field(ge=0)] = Field(default=True, description="-1 is false, as on the engine.")
    min_score: float | None = Field(default=None, allow_inf_nan=False)
    explain: bool = False
    post_filter: dict[str, Any] | None = None
    aggs: dict[str, Any] | None = None
    highlight: dict[str, Any] | None = None

    @property
    def list_filters(self) -> tuple[dict[str, Any], ...]:
        """What every list must match: the body's filters and the clause's own."""
        return (*self.filters, *_clauses(self.clause.filter, "ssi.filter"))

    @field_validator("track_total_hits", mode="before")
    @classmethod
    def _minus_one_is_false(cls, value: Any) -> Any:
        return False if type(value) is int and value == -1 else value

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> SSISearchRequest | None:
        """The request of a body whose query holds an ``ssi`` clause; None for any other body.

        ``InputError`` names what is malformed or not supported.
        """
        query = body.get("query")
        located = _locate(query) if isinstance(query, dict) else None
        if located is None:
            return None
        clause, filters, must_not = located
        unsupported = sorted(set(body) - _HONOURED)
        if unsupported:
            raise InputError(f"[ssi] searches do not support [{'], ['.join(unsupported)}]")
        _check_sort(body.get("sort"))
        _check_depth(body)
        _check_read_parts(body)
        try:
            return cls(
                clause=clause,
                filters=tuple(filters),
                must_not=must_not,
                size=body.get("size", 10),
                offset=body.get("from", 0),
                hit_parts={name: body[name] for name in HIT_PARTS if name in body},
                timeout=body.get("timeout"),
                track_total_hits=body.get("track_total_hits", True),
                min_score=body.get("min_score"),
                explain=body.get("explain", False),
                post_filter=body.get("post_filter"),
                aggs=body.get("aggs", body.get("aggregations")),
                highlight=body.get("highlight"),
            )
        except ValidationError as exc:
            raise InputError(f"[ssi] search is malformed: {describe_validation_error(exc)}") from None


def _locate(query: dict[str, Any]) -> tuple[SSIQuery, list[dict[str, Any]], tuple[dict[str, Any], ...]] | None:
    """``(clause, filters, must_not)`` when ``query`` holds an ``ssi`` clause where frontends put one; else None."""
    if "ssi" in query:
        if len(query) != 1:
            raise InputError(f"[ssi] must be the only clause of [query], found also [{', '.join(sorted(k for k in query if k != 'ssi'))}]")
        return _clause(query["ssi"]), [], ()
    boolean = query.get("bool")
    if len(query) != 1 or not isinstance(boolean, dict):
        return None
    scoring = [(occur, c) for occur in _BOOL_SCORING for c in _clauses(boolean.get(occur), f"bool.{occur}")]
    ssi = [c for _, c in scoring if "ssi" in c]
    if not ssi:
        return None
    if len(scoring) != 1 or len(ssi[0]) != 1:
        raise InputError("[ssi] must be the only scoring clause of [bool] (its [must] or [should]); put other clauses "
                         "in [filter] or [must_not]")
    others = sorted(set(boolean) - {*_BOOL_SCORING, "filter", "must_not", "minimum_should_match", "boost"})
    if others:
        raise InputError(f"[ssi] inside [bool] does not support [{'], ['.join(others)}]")
    return _clause(ssi[0]["ssi"]), _clauses(boolean.get("filter"), "bool.filter"), tuple(_clauses(boolean.get("must_not"), "bool.must_not"))


def _clause(options: Any) -> SSIQuery:
    if not isinstance(options, dict):
        raise InputError('[ssi] query must be an object, e.g. {"ssi": {"query": "a dog catching a frisbee"}}')
    try:
        return SSIQuery.model_validate(options)
    except ValidationError as exc:
        raise InputError(describe_validation_error(exc, clause="ssi")) from None


def _clauses(value: Any, where: str) -> list[dict[str, Any]]:
    """A clause or list of clauses as a list; anything else is an ``InputError`` naming ``where``."""
    if value is None:
        return []
    listed = value if isinstance(value, list) else [value]
    if not all(isinstance(clause, dict) and clause for clause in listed):
        raise InputError(f"[{where}] must be a query clause or a list of them")
    return listed


def _check_sort(sort: Any) -> None:
    if sort is None:
        return
    for key in sort if isinstance(sort, list) else [sort]:
        if key == "_score" or (isinstance(key, dict) and list(key) == ["_score"] and key["_score"] in ("desc", {"order": "desc"})):
            continue
        raise InputError(f"[ssi] searches sort by [_score] (descending) only, not by {key!r}")


def _check_depth(body: Mapping[str, Any]) -> None:
    """Refuse a body nested deeper than ``MAX_DEPTH``: its clauses go on to the engine inside the lists' queries."""
    pending: list[tuple[Any, int]] = [(body, 1)]
    while pending:
        value, depth = pending.pop()
        if not isinstance(value, Mapping | list):
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"[ssi] search body is nested deeper than {MAX_DEPTH} levels")
        pending.extend((child, depth + 1) for child in (value.values() if isinstance(value, Mapping) else value))


def _check_read_parts(body: Mapping[str, Any]) -> None:
    """The parts the searcher reads itself, not only passes on to the engine, must have the shapes the engine accepts."""
    for name in ("fields", "docvalue_fields"):
        entries = body.get(name, [])
        if not isinstance(entries, list) or not all(_is_field_entry(entry) for entry in entries):
            raise InputError(f'[{name}] must be a list of field names or of {{"field": ...}} objects')
    stored = body.get("stored_fields")
    if stored is not None and not (isinstance(stored, str) or (isinstance(stored, list) and all(isinstance(n, str) for n in stored))):
        raise InputError("[stored_fields] must be a field name or a list of field names")
    if stored == "_none_" or (isinstance(stored, list) and "_none_" in stored):
        raise InputError("[stored_fields] cannot be [_none_] in [ssi] searches: fusing the lists needs each hit's _id")
    highlighted = body.get("highlight")
    fields = highlighted.get("fields", {}) if isinstance(highlighted, dict) else {}
    if not isinstance(fields, dict) and not (isinstance(fields, list) and all(isinstance(f, dict) and len(f) == 1 for f in fields)):
        raise InputError("[highlight.fields] must be an object of fields, or a list of objects with a single field each")


def _is_field_entry(entry: Any) -> bool:
    return isinstance(entry, str) or (isinstance(entry, dict) and isinstance(entry.get("field"), str))
