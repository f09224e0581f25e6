"""A full read of an index fails loudly when a shard fails: a scroll or a change feed never passes a partial read for a whole one.

The cluster is a small HTTP server on loopback that answers like OpenSearch,
with one shard failing where a test says so: a real node cannot be made to
lose a shard on demand.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.changes import IndexFeed
from ssi_plugin.engine.scan import scan
from ssi_plugin.errors import ShardsFailed

ALL_ANSWERED = {"total": 2, "successful": 2, "skipped": 0, "failed": 0}
ONE_FAILED = {
    "total": 2, "successful": 1, "skipped": 0, "failed": 1,
    "failures": [{"shard": 1, "index": "photos", "node": "n1",
                  "reason": {"type": "search_context_missing_exception", "reason": "No search context found for id [7]"}}],
}


def _page(ids: list[str], shards: dict[str, Any], scroll_id: str = "scroll-1") -> dict[str, Any]:
    hits = [{"_index": "photos", "_id": i, "_seq_no": n, "sort": [n], "_source": {"ssi": {"id": f"objects: {i}"}}}
            for n, i in enumerate(ids)]
    return {"_scroll_id": scroll_id, "_shards": shards, "hits": {"hits": hits}}


class _Cluster(ThreadingHTTPServer):
    """Answers ``GET /`` as OpenSearch 2.19, and each other ``METHOD path`` with the next of its queued answers."""

    def __init__(self) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.seen: list[str] = []
        cluster = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                route = f"{self.command} {self.path.split('?')[0]}"
                cluster.seen.append(route)
                if route == "GET /":
                    body: dict[str, Any] = {"version": {"distribution": "opensearch", "number": "2.19.1"}}
                else:
                    queue = cluster.answers.get(route) or [{"acknowledged": True}]
                    body = queue.pop(0) if len(queue) > 1 else queue[0]
                payload = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def cluster() -> Iterator[tuple[_Cluster, Callable[[], EngineClient]]]:
    server = _Cluster()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield server, lambda: connect(EngineSettings(url=url))
    finally:
        server.shutdown()
        server.server_close()


def test_a_scroll_page_with_a_failed_shard_raises_naming_the_index_and_reason(cluster) -> None:
    server, engine = cluster
    server.answers["POST /photos/_search"] = [_page(["a", "b"], ALL_ANSWERED)]
    server.answers["POST /_search/scroll"] = [_page(["c"], ONE_FAILED), _page([], ALL_ANSWERED)]
    read: list[str] = []
    with engine() as client, pytest.raises(ShardsFailed) as failure:
        read.extend(hit["_id"] for hit in scan(client, "photos"))
    assert read == ["a", "b"], "the hits of the page with the failed shard are not passed on"
    assert (failure.value.index, failure.value.failed, failure.value.total) == ("photos", 1, 2)
    assert str(failure.value) == (
        "1 of 2 shards of photos failed to answer, so its documents cannot all be read: "
        "shard 1 of photos: search_context_missing_exception: No search context found for id [7]"
    )
    assert server.seen[-1] == "DELETE /_search/scroll", "the scroll context is still cleared"


def test_a_failed_shard_on_the_first_page_yields_nothing(cluster) -> None:
    server, engine = cluster
    server.answers["POST /photos/_search"] = [_page(["a"], ONE_FAILED)]
    with engine() as client, pytest.raises(ShardsFailed, match="shards of photos failed"):
        next(scan(client, "photos"))


def test_a_whole_scroll_reads_every_page(cluster) -> None:
    server, engine = cluster
    server.answers["POST /photos/_search"] = [_page(["a", "b"], ALL_ANSWERED)]
    server.answers["POST /_search/scroll"] = [_page(["c"], ALL_ANSWERED), _page([], ALL_ANSWERED)]
    with engine() as client:
        assert [hit["_id"] for hit in scan(client, "photos")] == ["a", "b", "c"]


def test_the_change_feed_raises_the_same_error(cluster) -> None:
    server, engine = cluster
    server.answers["GET /photos/_settings/index.uuid,index.number_of_shards"] = [
        {"photos": {"settings": {"index": {"uuid": "u1", "number_of_shards": "1"}}}}
    ]
    server.answers["POST /photos/_search"] = [_page(["a"], ONE_FAILED)]
    with engine() as client:
        feed = IndexFeed(client, "photos")
        with pytest.raises(ShardsFailed, match="search_context_missing_exception"):
            feed.since(feed.layout(), {})
