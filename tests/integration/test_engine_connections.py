"""A client keeps its connections: concurrent searches (serve's ssi queries) reuse them instead of opening new ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect

pytestmark = pytest.mark.engine

THREADS = 16
ROUNDS = 8


def _opened(engine: EngineClient) -> int:
    """HTTP connections the cluster's nodes have accepted since they started."""
    stats = engine.request("GET", "/_nodes/stats/http")
    return sum(node["http"]["total_opened"] for node in stats["nodes"].values())


@pytest.mark.parametrize("for_callers", [False, True], ids=["own", "callers"])
def test_concurrent_searches_reuse_connections(engine: EngineClient, index_name: str, for_callers: bool) -> None:
    engine.request("PUT", f"/{index_name}", body={"settings": {"number_of_shards": 1, "number_of_replicas": 0}})
    searches = [{"query": {"match_all": {}}, "size": 1}] * 3
    together = threading.Barrier(THREADS)
    with connect(EngineSettings(url=engine.url)) as client:

        def search_repeatedly(_: int) -> None:
            for _ in range(ROUNDS):
                together.wait(timeout=60)  # every thread's search of a round is under way at the same time
                answers = client.msearch(index_name, searches, headers={} if for_callers else None)
                assert [answer.get("status", 200) for answer in answers] == [200] * len(searches)

        before = _opened(engine)
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(search_repeatedly, range(THREADS)))
        opened = _opened(engine) - before
    # One connection per thread at most (and this test's own stats calls): a pool that kept fewer than the threads
    # opened one for nearly every search of every round.
    assert opened <= THREADS + 2, f"{ROUNDS} rounds of {THREADS} searches at once opened {opened} connections"
