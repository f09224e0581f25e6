"""The ``ssi`` query clause: what a search request may ask of the SSI retriever."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ssi_plugin.engine.vectors import VECTOR_FIELD
from ssi_plugin.indexing.documents import CAPTION_FIELD

Fusion = Literal["rrf", "linear"]


class SSIQuery(BaseModel):
    """``{"query": {"ssi": {...}}}`` — unknown fields are refused, so a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    query: str | None = Field(default=None, min_length=1, description="The text to search for (optional with image: "
                              "then the image's caption).")
    image: str | None = Field(default=None, min_length=1, description="An image to search with: a data: URL, or an "
                              "http(s) URL of a public address. The annotator's identifier of it is what is searched.")
    k: int = Field(default=10, ge=1, le=100, description="Identifiers to generate.")
    fusion: Fusion = Field(
        default="linear",
        description="linear (default): weighted sum of each list's scores over its best, so the generator's "
                    "probabilities decide between exact identifiers; rrf: reciprocal-rank fusion, ranks only.",
    )
    bm25_field: str | None = Field(
        default=None,
        description=f"Also run BM25 on this text field and fuse it in, unless the generator is sure of the image that "
                    f"explains the query best. "
                    f"Left out: the ingested caption (`{CAPTION_FIELD}`) when there is query text and no dense leg; "
                    f"null: no BM25 list.",
    )
    hybrid: bool = Field(default=False, description="Also ask the engine's kNN search over the caption vectors "
                         "(`ingest --vectors`) and fuse it in: the dense leg.")
    vector_field: str | None = Field(default=None, description="The dense leg searches this vector field instead "
                                     "(implies hybrid); its query vector is the text's all-MiniLM-L6-v2 embedding "
                                     "unless query_vector is given.")
    query_vector: list[float] | None = Field(default=None, min_length=1, description="The dense leg's query vector, "
                                             "made by the caller for its own field (implies hybrid).")
    explain: bool = Field(default=False, description="Attach matched concepts and per-list ranks to each hit.")
    filter: dict[str, Any] | list[dict[str, Any]] | None = Field(
        default=None, description="Query clauses every hit must match (as knn's filter): applied to every list.")

    @property
    def dense_field(self) -> str | None:
        """The vector field the dense leg searches; None: no dense leg."""
        if self.vector_field is not None:
            return self.vector_field
        return VECTOR_FIELD if self.hybrid or self.query_vector is not None else None

    @property
    def reads_words(self) -> bool:
        """Whether the query text is read for its words and meaning (the terms, related and meaning lists, and BM25
        by default): there is text, and no dense leg, which takes their place."""
        return self.query is not None and self.dense_field is None

    @property
    def bm25_searched_field(self) -> str | None:
        """The text field the BM25 list searches; None: no BM25 list. Unless the clause names one (or null), the
        caption ingested with each image, while there is text to search and no dense leg: the caption holds words
        its identifier left out, so an image ingested after the generator was trained is found by them too
        (``LIST_WEIGHTS`` in ``ssi_plugin.search.plan``); a dense leg takes its place, as it does the terms lists'."""
        if "bm25_field" in self.model_fields_set:
            return self.bm25_field
        return CAPTION_FIELD if self.reads_words else None

    @field_validator("query")
    @classmethod
    def _not_blank(cls, text: str | None) -> str | None:
        if text is not None and not text.strip():
            raise ValueError("query is blank")
        return text

    @model_validator(mode="after")
    def _something_to_search(self) -> SSIQuery:
        if self.query is None:
            if self.image is None:
                raise ValueError("requires [query] (text), [image], or both")
            if self.bm25_field is not None:
                raise ValueError("[bm25_field] searches the query text: give [query] too")
            if self.dense_field is not None and self.query_vector is None:
                raise ValueError("the dense leg embeds the query text: give [query] (or [query_vector]) too")
        return self
