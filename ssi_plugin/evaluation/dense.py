"""Dense baseline: all-MiniLM-L6-v2 sentence embeddings, brute-force cosine over the ingested captions.

Brute force is exact and, at evaluation scale (thousands of captions), a single
matrix product: the reference that the engine's own kNN search (``dense-engine``)
is measured against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ssi_plugin.embedding import MiniLMEncoder
from ssi_plugin.errors import InputError


class DenseRetriever:
    """Ranks image ids by cosine similarity of the query to each image's caption."""

    def __init__(self, encoder: MiniLMEncoder, ids: Sequence[str], texts: Sequence[str], *, name: str = "dense-minilm") -> None:
        if len(ids) != len(texts):
            raise InputError(f"{len(ids)} image ids but {len(texts)} captions to embed")
        self.encoder = encoder
        self.ids = list(ids)
        self.vectors = encoder.encode(texts)
        self.name = name

    def retrieve(self, query: str, k: int) -> list[str]:
        similarity = self.vectors @ self.encoder.encode([query])[0]
        top = np.argsort(-similarity, kind="stable")[:k]
        return [self.ids[i] for i in top]
