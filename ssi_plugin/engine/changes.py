"""What an index holds and what changed in it, read by sequence number.

Every write to a shard gets the next ``_seq_no`` of that shard, and a document
keeps the number of its last write. So "the documents written since I last
looked" is a range query per shard (``_seq_no`` above the highest one taken
in, sorted by it and paged with ``search_after``), whichever process wrote them
and however (``ingest``, ``_reindex``, an application's own ``_bulk``). A full
read is the same query from -1. Deletions leave no document to find: a count of
the identified documents, compared with what the reader holds, tells that one
happened (or that a write became visible out of order), and a full read then
settles it.

Both engines answer these queries alike; an alias is followed to its indices,
and a change of those indices (a ``reindex`` swapping the alias) is seen by
their uuids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict

from ssi_plugin.engine.client import EngineClient
from ssi_plugin.engine.shards import require_all_shards

PAGE = 10_000
"""Documents per page: the largest ``size`` both engines accept by default."""
IDENTIFIED = {"exists": {"field": "ssi.id"}}


class Shard(NamedTuple):
    index: str  # type: ignore[assignment]  # the index name; shadows tuple.index, which nothing here calls
    uuid: str
    number: int


class Layout(BaseModel):
    """The concrete indices (by uuid) behind an index name or alias, and their shards."""

    model_config = ConfigDict(frozen=True)

    shards: tuple[Shard, ...]

    def key(self) -> str:
        return ",".join(sorted({shard.uuid for shard in self.shards}))


class Change(NamedTuple):
    """One identified document as it is now: its ``ssi.id`` as stored, and whether the ingest pipeline refused it."""

    image_id: str
    identifier: object
    refused: bool = False


class IndexFeed:
    """Reads the identified documents of ``index`` (an index or alias) by shard and sequence number."""

    def __init__(self, engine: EngineClient, index: str) -> None:
        self.engine = engine
        self.index = index

    def layout(self) -> Layout:
        """The shards of the indices behind ``index``; an ``EngineRequestError`` (404) when there is none."""
        answer = self.engine.request("GET", f"/{self.index}/_settings/index.uuid,index.number_of_shards")
        return Layout(shards=tuple(
            Shard(name, settings["settings"]["index"]["uuid"], number)
            for name, settings in sorted(answer.items())
            for number in range(int(settings["settings"]["index"]["number_of_shards"]))
        ))

    def count(self) -> int:
        """Identified documents the index shows to searches now."""
        return self.engine.count(self.index, IDENTIFIED)

    def since(self, layout: Layout, watermarks: Mapping[str, int]) -> tuple[list[Change], dict[str, int]]:
        """Documents written after ``watermarks`` (per ``shard_key``; -1 or absent: all), and the new watermarks."""
        changes: list[Change] = []
        marks = {shard_key(shard): watermarks.get(shard_key(shard), -1) for shard in layout.shards}
        for shard in layout.shards:
            for hit in self._pages(shard, marks[shard_key(shard)]):
                changes.append(_change(hit))
                marks[shard_key(shard)] = max(marks[shard_key(shard)], int(hit["_seq_no"]))
        return changes, marks

    def _pages(self, shard: Shard, after: int) -> Iterator[dict[str, Any]]:
        body: dict[str, Any] = {
            "size": PAGE, "seq_no_primary_term": True, "sort": [{"_seq_no": "asc"}], "track_total_hits": False,
            "_source": ["ssi.id", "ssi_error"],
            "query": {"bool": {"filter": [IDENTIFIED, {"range": {"_seq_no": {"gt": after}}}]}},
        }
        while True:
            page = self.engine.search(shard.index, body, params={"preference": f"_shards:{shard.number}"})
            require_all_shards(page, index=shard.index)
            hits = page["hits"]["hits"]
            yield from hits
            if len(hits) < PAGE:
                return
            body["search_after"] = hits[-1]["sort"]


def shard_key(shard: Shard) -> str:
    return f"{shard.uuid}/{shard.number}"


def _change(hit: dict[str, Any]) -> Change:
    source = hit.get("_source") or {}
    return Change(hit["_id"], (source.get("ssi") or {}).get("id"), "ssi_error" in source)
