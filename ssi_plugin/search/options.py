"""The ``ssi`` query clause: what a search request may ask of the SSI retriever."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Fusion = Literal["rrf", "linear"]


class SSIQuery(BaseModel):
    """``{"query": {"ssi": {...}}}`` — unknown fields are refused, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str = Field(min_length=1, description="The text to search for.")
    k: int = Field(default=10, ge=1, le=100, description="Identifiers to generate.")
    fusion: Fusion = Field(
        default="linear",
        description="linear (default): weighted sum of each list's scores over its best, so the generator's "
                    "probabilities decide between exact identifiers; rrf: reciprocal-rank fusion, ranks only.",
    )
    bm25_field: str | None = Field(default=None, description="Also run BM25 on this text field and fuse it in.")
    explain: bool = Field(default=False, description="Attach matched concepts and per-list ranks to each hit.")
    filter: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="Query clauses every hit must match (as knn's filter): applied to every list.")

    @field_validator("query")
    @classmethod
    def _not_blank(cls, text: str) -> str:
        if not text.strip():
            raise ValueError("query is blank")
        return text
