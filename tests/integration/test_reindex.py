"""`reindex` re-identifies an existing index into a new one and moves an alias only when complete."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ssi_plugin.annotation.factory import create_annotator
from ssi_plugin.datasets.synthetic import synthetic_record
from ssi_plugin.engine import EngineClient
from ssi_plugin.errors import ConfigError, InputError
from ssi_plugin.indexing.reindex import reindex

pytestmark = pytest.mark.engine


@pytest.fixture(scope="module")
def annotator():
    with create_annotator("caption") as caption_annotator:
        yield caption_annotator


def _fill(engine: EngineClient, index: str, count: int) -> None:
    """A plain index, as an application wrote it: captions, no identifiers, one malformed identifier."""
    docs = []
    for n in range(count):
        record, _ = synthetic_record(7, n)
        docs.append({"_index": index, "_id": record.id, "_source": {"caption": record.captions[0], "owner": f"app-{n}"}})
    docs[1]["_source"]["ssi"] = {"id": "objects: Not Canonical"}
    docs.append({"_index": index, "_id": "no-caption", "_source": {"owner": "app"}})
    assert all(r.ok for r in engine.bulk(docs, refresh=True))


def _sources(engine: EngineClient, index: str) -> dict[str, dict]:
    hits = engine.search(index, {"size": 10_000, "query": {"match_all": {}}})["hits"]["hits"]
    return {hit["_id"]: hit["_source"] for hit in hits}


def test_reindex_identifies_documents_keeps_their_fields_and_refuses_an_incomplete_swap(
    engine: EngineClient, annotator, index_name: str, tmp_path: Path
) -> None:
    source, dest, alias = f"{index_name}-src", f"{index_name}-dst", f"{index_name}-live"
    _fill(engine, source, 20)
    engine.request("POST", "/_aliases", body={"actions": [{"add": {"index": source, "alias": alias}}]})

    from ssi_plugin.errors import PartialFailure

    with pytest.raises(PartialFailure, match="20 of 21 documents"):
        reindex(engine, annotator, source=source, dest=dest, alias=alias, failures=tmp_path / "f.jsonl", progress=False)
    assert list(engine.request("GET", f"/_alias/{alias}")) == [source], "an incomplete copy leaves the alias alone"
    assert '"no-caption"' in (tmp_path / "f.jsonl").read_text()

    copied = _sources(engine, dest)
    assert len(copied) == 20
    third = synthetic_record(7, 3)[0].id
    assert copied[third]["owner"] == "app-3"
    assert all(doc["ssi"]["concepts"] for doc in copied.values())
    assert copied[synthetic_record(7, 1)[0].id]["ssi"]["id"] != "objects: Not Canonical"


def test_reindex_moves_the_alias_atomically_when_complete(engine: EngineClient, annotator, index_name: str, tmp_path: Path) -> None:
    source, dest, alias = f"{index_name}-src", f"{index_name}-dst", f"{index_name}-live"
    _fill(engine, source, 5)
    engine.request("DELETE", f"/{source}/_doc/no-caption", params={"refresh": "true"})
    engine.request("POST", "/_aliases", body={"actions": [{"add": {"index": source, "alias": alias}}]})
    summary = reindex(engine, annotator, source=source, dest=dest, alias=alias, failures=tmp_path / "f.jsonl", progress=False)
    assert summary.alias_moved and summary.annotated == 5
    assert list(engine.request("GET", f"/_alias/{alias}")) == [dest]

    with pytest.raises(ConfigError, match="--resume"):
        reindex(engine, annotator, source=source, dest=dest, failures=tmp_path / "f.jsonl", progress=False)
    again = reindex(engine, annotator, source=dest, dest=f"{index_name}-third", failures=tmp_path / "g.jsonl", progress=False)
    assert (again.copied, again.annotated) == (5, 0), "current identifiers are copied, not recomputed"
    with pytest.raises(InputError, match="does not exist"):
        reindex(engine, annotator, source=f"{index_name}-nothing", dest=dest, failures=tmp_path / "h.jsonl", progress=False)


@pytest.mark.opensearch_only(
    reason="resuming is client-side; scroll, bulk and the alias move on Elasticsearch are covered by the tests above, "
    "and this one takes over a minute"
)
def test_killed_reindex_resumes_to_the_same_result(engine: EngineClient, index_name: str, tmp_path: Path) -> None:
    source = f"{index_name}-src"
    _fill(engine, source, 400)
    engine.request("DELETE", f"/{source}/_doc/no-caption", params={"refresh": "true"})

    def command(dest: str, *extra: str) -> list[str]:
        return [sys.executable, "-m", "ssi_plugin", "--url", engine.url, "reindex", "--source", source, "--dest", dest,
                "--chunk-size", "10", "--failures", str(tmp_path / f"{dest}.jsonl"), *extra]

    env = {**os.environ, "SSI_CACHE_DIR": str(tmp_path / "cache")}
    subprocess.run(command(f"{index_name}-whole"), check=True, env=env, capture_output=True)

    interrupted = f"{index_name}-cut"
    process = subprocess.Popen(command(interrupted), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if engine.exists(f"/{interrupted}") and engine.request("POST", f"/{interrupted}/_refresh") and engine.count(interrupted) >= 50:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    engine.refresh(interrupted)
    assert 0 < engine.count(interrupted) < 400, "the run was cut in the middle"

    refused = subprocess.run(command(interrupted), env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "--resume" in refused.stderr
    subprocess.run(command(interrupted, "--resume"), check=True, env=env, capture_output=True)
    resumed, whole = _sources(engine, interrupted), _sources(engine, f"{index_name}-whole")
    assert {k: v["ssi"]["id"] for k, v in resumed.items() if v != whole.get(k)} == {}
    assert resumed == whole
