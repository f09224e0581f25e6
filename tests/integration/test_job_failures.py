"""Long jobs fail cleanly: an engine outage, a full disk or Ctrl-C stops every worker, prints one line, exits with its code.

Each job runs as the real command in a subprocess. The engine tests use a node of their own (they kill it), never the
session's. Checked every time: the documented exit code, exactly one line naming the cause, no traceback, no abort
of a native library (``libblis: Aborting.`` was one: a worker thread still inside spaCy's BLAS at exit), and an end
within a bounded time. A rerun then finishes the job with every item present exactly once.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from job_support import assert_one_line as _assert_one_line
from job_support import command as _command
from job_support import count as _count
from job_support import dataset_ids as _dataset_ids
from job_support import index_ids as _ids
from job_support import start_job as _start

from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import connect
from ssi_plugin.engine.local_node import LocalNode

RECORDS = 6000
ENDS_WITHIN = 60
"""Seconds a failing job may take to stop after the cause, its workers included."""


@pytest.fixture
def own_node(tmp_path: Path) -> Iterator[LocalNode]:
    """A local OpenSearch node for this test alone: the test kills it and starts it again."""
    node = LocalNode(tmp_path / "engine-cache")
    node.start(attached=True)
    yield node
    if node.status().running:
        node.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6,000 synthetic records, captions only: 15 s to a minute of ingest with the caption annotator on two cores, so
    that an interruption lands mid-run on a fast machine too."""
    out = tmp_path_factory.mktemp("synthetic")
    _command("data", "synthetic", str(out), "-n", str(RECORDS), "--no-images")
    return out / "dataset.jsonl"


def _interrupt_mid_run(job: subprocess.Popen[str], started: Callable[[], bool], cause: Callable[[], None]) -> tuple[int, str]:
    """Wait until ``started()`` says the job is under way, apply ``cause``, and return (exit code, stderr)."""
    deadline = time.monotonic() + 300
    while not started():
        assert job.poll() is None, f"the job ended before it could be interrupted: {job.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.2)
    cause()
    caused = time.monotonic()
    try:
        _, stderr = job.communicate(timeout=ENDS_WITHIN)
    except subprocess.TimeoutExpired:
        job.kill()
        pytest.fail(f"the job still ran {ENDS_WITHIN} s after it was interrupted: {job.communicate()[1][-3000:]}")
    assert time.monotonic() - caused < ENDS_WITHIN
    return job.returncode, stderr


def _kill(node: LocalNode) -> Callable[[], None]:
    def kill() -> None:
        pid = node.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)

    return kill


def _restart(node: LocalNode, index: str) -> str:
    """Start the killed node again and wait until ``index`` is recovered from its translog; its URL."""
    url = str(node.start(attached=True).url)
    with urllib.request.urlopen(f"{url}/_cluster/health/{index}?wait_for_status=yellow&timeout=120s", timeout=130) as answer:
        assert json.load(answer)["status"] in ("yellow", "green")
    return url


def test_ingest_stopped_by_ctrl_c_or_an_engine_outage_exits_cleanly_and_a_rerun_completes_it(
        own_node: LocalNode, dataset: Path, tmp_path: Path) -> None:
    url = str(own_node.status().url)
    ingest = ("ingest", str(dataset), "--index", "jobs", "--chunk-size", "100", "--failures", str(tmp_path / "jobs.failures.jsonl"))

    job = _start(*ingest, "--url", url)
    code, stderr = _interrupt_mid_run(job, lambda: _count(url, "jobs") > 0, lambda: job.send_signal(signal.SIGINT))
    _assert_one_line(stderr, code, 130, "Interrupted")

    job = _start(*ingest, "--url", url)
    held = _count(url, "jobs")
    code, stderr = _interrupt_mid_run(job, lambda: _count(url, "jobs") >= held + 100, _kill(own_node))
    _assert_one_line(stderr, code, 3, "EngineUnreachable: no search engine answers at")

    url = _restart(own_node, "jobs")
    assert 0 < _count(url, "jobs") < RECORDS, "the outage came mid-run"
    _command(*ingest, "--url", url)
    ids = _ids(url, "jobs")
    assert len(ids) == len(set(ids)) == RECORDS
    assert set(ids) == _dataset_ids(dataset)


def test_reindex_stopped_by_an_engine_outage_exits_cleanly_and_a_resumed_run_completes_it(own_node: LocalNode, tmp_path: Path) -> None:
    url = str(own_node.status().url)
    with connect(EngineSettings(url=url)) as engine:  # documents without identifiers: reindex annotates each one
        engine.request("PUT", "/raw")
        actions = ({"_op_type": "index", "_index": "raw", "_id": f"d{n}", "_source": {"caption": f"a red kite number {n} over the sea"}}
                   for n in range(1500))
        assert all(outcome.ok for outcome in engine.bulk(actions, chunk_size=500))
        engine.refresh("raw")
    reindex = ("reindex", "--source", "raw", "--dest", "fresh", "--chunk-size", "50", "--failures", str(tmp_path / "fresh.failures.jsonl"))

    job = _start(*reindex, "--url", url)
    code, stderr = _interrupt_mid_run(job, lambda: _count(url, "fresh") >= 50, _kill(own_node))
    _assert_one_line(stderr, code, 3, "EngineUnreachable: no search engine answers at")

    url = _restart(own_node, "fresh")
    assert 0 < _count(url, "fresh") < 1500, "the outage came mid-run"
    _command(*reindex, "--resume", "--url", url)
    ids = _ids(url, "fresh")
    assert len(ids) == len(set(ids)) == 1500


def _file_size_limit(limit: int) -> Callable[[], None]:
    """A child whose files cannot grow past ``limit`` bytes: its writes fail like on a full disk (EFBIG)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_annotate_that_cannot_write_its_output_says_so_in_one_line_and_a_rerun_resumes(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "annotations.jsonl"
    annotate = ("annotate", str(dataset), "--limit", "300", "--out", str(out))
    result = _command(*annotate, check=False, preexec_fn=_file_size_limit(20_000))
    _assert_one_line(result.stderr, result.returncode, 2, f"OutputUnwritable: cannot write {out}: File too large")

    _command(*annotate)
    ids = [json.loads(line)["id"] for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ids) == len(set(ids)) == 300


def test_train_that_cannot_write_its_checkpoint_says_so_in_one_line_and_a_rerun_finishes(dataset: Path, tmp_path: Path) -> None:
    examples, out = tmp_path / "examples.jsonl", tmp_path / "generator"
    _command("annotate", str(dataset), "--limit", "40", "--out", str(examples))
    train = ("train", "--data", str(examples), "--out", str(out), "--epochs", "1", "--batch-size", "8", "--checkpoint-every", "2")
    result = _command(*train, check=False, preexec_fn=_file_size_limit(1_000_000))  # the first checkpoint is larger
    _assert_one_line(result.stderr, result.returncode, 2, f"OutputUnwritable: cannot write {out / 'checkpoint.partial'}: File too large")

    _command(*train)
    assert json.loads((out / "training_report.json").read_text(encoding="utf-8"))["steps"] == 5
