"""Answers that lack some shards: a search or scroll page from which a shard failed holds only part of the index.

The engines answer such a search with 200 and count the failure in
``_shards.failed``; read as whole, it would quietly build a trie or a copy of
the index with documents missing. So every full read checks each page.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ssi_plugin.errors import ShardsFailed


def require_all_shards(answer: Mapping[str, Any], *, index: str) -> None:
    """Raise ``ShardsFailed`` (naming ``index`` and each failed shard's reason) when a shard failed to answer."""
    shards = answer.get("_shards") or {}
    failed = int(shards.get("failed") or 0)
    if failed:
        reasons = list(dict.fromkeys(_describe(failure) for failure in shards.get("failures") or []))
        raise ShardsFailed(index, failed=failed, total=int(shards.get("total") or failed), reasons=reasons)


def _describe(failure: Mapping[str, Any]) -> str:
    reason = failure.get("reason")
    if isinstance(reason, Mapping):
        reason = f"{reason.get('type', 'error')}: {reason.get('reason', '')}".rstrip(": ")
    where = f"shard {failure['shard']}" if failure.get("shard") is not None else "a shard"
    return f"{where} of {failure['index']}: {reason}" if failure.get("index") else f"{where}: {reason}"
