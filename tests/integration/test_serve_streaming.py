"""A large ``_bulk`` through ``ssi-plugin serve`` reaches the real node streamed, with flat memory.

serve reads only search bodies (``--max-body-size``, 10 MiB); a bulk body flows
through chunk by chunk as it is sent, so its size is the cluster's to limit
(``http.max_content_length``, 100 MB by default), and serve's resident memory
stays about where it was, whatever the size.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from serve_support import serve_process

from ssi_plugin.engine import EngineClient

pytestmark = [
    pytest.mark.engine,
    pytest.mark.opensearch_only(reason="serve's memory while streaming does not depend on the engine: one 64 MiB bulk "
                                "per run is enough"),
]

BULK_BYTES = 64 * 1024 * 1024
_LINE = b'{"index": {}}\n{"n": "%09d", "caption": "%s"}\n'
_CAPTION = "a dog catching a frisbee in the park " * 26
LINE_BYTES = len(_LINE % (0, _CAPTION.encode()))
DOCUMENTS = BULK_BYTES // LINE_BYTES


def bulk_body() -> Iterator[bytes]:
    """``DOCUMENTS`` index actions, made as they are sent (about 64 KiB a chunk): nothing holds the whole body."""
    per_chunk = 64 * 1024 // LINE_BYTES
    for first in range(0, DOCUMENTS, per_chunk):
        yield b"".join(_LINE % (n, _CAPTION.encode()) for n in range(first, min(first + per_chunk, DOCUMENTS)))


class PeakMemory:
    """The highest resident memory of process ``pid`` while the ``with`` block runs, sampled every 20 ms."""

    def __init__(self, pid: int) -> None:
        self._process = psutil.Process(pid)
        self.before = self.peak = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.before


def test_a_bulk_far_over_the_search_body_limit_is_indexed_through_serve_with_flat_memory(
        engine: EngineClient, engine_url: str, index_name: str, tmp_path: Path,
        record_property: pytest.RecordProperty) -> None:
    engine.request("PUT", f"/{index_name}", body={"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                                                  "mappings": {"dynamic": False}})
    with serve_process("--upstream", engine_url, "--cache-dir", str(tmp_path)) as (url, process):
        httpx.get(f"{url}/{index_name}/_count")  # the pooled connection to the cluster exists before measuring
        with PeakMemory(process.pid) as memory:
            answer = httpx.post(f"{url}/{index_name}/_bulk", content=bulk_body(),
                                headers={"content-type": "application/x-ndjson"}, timeout=600)
        httpx.post(f"{url}/{index_name}/_refresh")
        count = httpx.get(f"{url}/{index_name}/_count")
    growth_mib = memory.growth / 2**20
    record_property("serve_rss_growth_mib", round(growth_mib, 1))
    print(f"\nserve's resident memory grew {growth_mib:.1f} MiB while streaming a {BULK_BYTES / 2**20:.0f} MiB _bulk "
          f"({memory.before / 2**20:.0f} -> {memory.peak / 2**20:.0f} MiB)")
    assert answer.status_code == 200, answer.text[:500]
    result = answer.json()
    failed = [item for item in result["items"] if item["index"].get("error")]
    assert failed == [] and len(result["items"]) == DOCUMENTS, failed[:3]
    assert count.json()["count"] == DOCUMENTS
    assert memory.growth < BULK_BYTES / 4, f"serve grew {growth_mib:.1f} MiB for a {BULK_BYTES >> 20} MiB body"
