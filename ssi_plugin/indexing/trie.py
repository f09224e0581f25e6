"""Keep a trained generator's trie in step with the identifiers its index holds."""

from __future__ import annotations

from pathlib import Path

from ssi_plugin.engine import EngineClient
from ssi_plugin.indexing.documents import identifier_pairs


def default_model_dir(cache_dir: Path, index: str) -> Path:
    """Where ``train`` puts, and ``search``/``serve`` look for, the generator of ``index``."""
    return cache_dir / "models" / index


def refresh_index_trie(engine: EngineClient, index: str, *, cache_dir: Path, model_dir: Path | None = None) -> Path | None:
    """Rebuild the trie of the index's generator from the index; None when no generator was trained yet.

    New images become retrievable without retraining: the generator speaks in
    concept words and the rebuilt trie admits their identifiers.
    """
    from ssi_plugin.generation.generator import build_trie_for_folder

    folder = model_dir or default_model_dir(cache_dir, index)
    if not folder.is_dir():
        return None
    build_trie_for_folder(folder, identifier_pairs(engine, index))
    return folder
