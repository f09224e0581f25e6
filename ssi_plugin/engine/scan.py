"""Read every document of an index, in a stable order, with a scroll.

Scroll is the one paging API both engines serve alike on any number of
shards; the scroll context is cleared even when the reader stops early (when
the engine is down, it ends with its keep-alive: that is not a second error).
A page that some shard failed to fill raises ``ShardsFailed`` before its hits
are yielded: a partial read must not pass for the whole index. (The clients'
own ``helpers.scan`` checks the same, after yielding, and without the reasons.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ssi_plugin.engine.client import EngineClient
from ssi_plugin.engine.shards import require_all_shards
from ssi_plugin.errors import EngineError

KEEP_ALIVE = "2m"


def scan(
    engine: EngineClient,
    index: str,
    *,
    query: Mapping[str, Any] | None = None,
    source: bool | Sequence[str] = True,
    page_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Yield the raw hits (``_id``, ``_source``...) of ``index`` matching ``query`` (all when None)."""
    body: dict[str, Any] = {
        "size": page_size,
        "sort": ["_doc"],
        "_source": source if isinstance(source, bool) else list(source),
        "query": dict(query) if query else {"match_all": {}},
    }
    page = engine.request("POST", f"/{index}/_search", body=body, params={"scroll": KEEP_ALIVE})
    scroll_id = page.get("_scroll_id")
    try:
        while True:
            require_all_shards(page, index=index)
            if not page["hits"]["hits"]:
                return
            yield from page["hits"]["hits"]
            page = engine.request("POST", "/_search/scroll", body={"scroll": KEEP_ALIVE, "scroll_id": scroll_id})
            scroll_id = page.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            with contextlib.suppress(EngineError):  # expired, or the engine is down: the scroll ends with its keep-alive
                engine.request("DELETE", "/_search/scroll", body={"scroll_id": [scroll_id]})
