"""Caption vectors written beside the identifiers (``ingest --vectors``, ``reindex --vectors``).

The dense leg of a hybrid search and the ``dense-engine`` baseline ask the
engine's kNN search over these: the all-MiniLM-L6-v2 embedding of each
document's caption. Documents an earlier run indexed without one are given one
by a partial update, so turning vectors on for an existing index needs no
re-annotation.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from ssi_plugin.embedding import MiniLMEncoder, shared_encoder
from ssi_plugin.engine import EngineClient
from ssi_plugin.engine.scan import scan
from ssi_plugin.engine.vectors import VECTOR_FIELD, ensure_vector_field


class CaptionVectors:
    """Embeds captions into the documents of one index, whose vector field it maps if missing."""

    def __init__(self, engine: EngineClient, index: str, *, caption_field: str, encoder: MiniLMEncoder | None = None) -> None:
        ensure_vector_field(engine, index)
        self.engine = engine
        self.index = index
        self.caption_field = caption_field
        self.encoder = encoder or shared_encoder()

    def lacking(self) -> set[str]:
        """Ids of the index's documents that have a caption but no vector."""
        query = {"bool": {"filter": {"exists": {"field": self.caption_field}}, "must_not": {"exists": {"field": VECTOR_FIELD}}}}
        return {hit["_id"] for hit in scan(self.engine, self.index, query=query, source=False)}

    def add(self, documents: Sequence[dict[str, Any]]) -> int:
        """Give every document with a text caption and no vector its caption's embedding; how many were given one."""
        missing = [d for d in documents if VECTOR_FIELD not in d and isinstance(d.get(self.caption_field), str)]
        for document, vector in zip(missing, self.encoder.encode([d[self.caption_field] for d in missing]), strict=True):
            document[VECTOR_FIELD] = vector.tolist()
        return len(missing)

    def embedded(self, actions: Iterable[dict[str, Any]], *, batch: int = 64) -> Iterator[dict[str, Any]]:
        """Index actions with their ``_source`` embedded, ``batch`` captions per model call."""
        stream = iter(actions)
        while chunk := list(itertools.islice(stream, batch)):
            self.add([action["_source"] for action in chunk])
            yield from chunk
