"""``ssi-plugin serve --workers N``: several processes answer on one port, each with its own generator.

The generator is the tiny random model of ``tiny_generator``: what is checked is that every worker answers as a single
process does, that a dead worker is replaced while the others answer, and that a worker that cannot start stops the
command instead of being restarted forever.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from serve_support import free_port, serve_command, serve_process

pytestmark = [pytest.mark.engine, pytest.mark.opensearch_only(reason="one engine is enough: the workers are serve's own")]

STARTED = "Application startup complete."
QUERY = {"query": {"ssi": {"query": "a dog catching a frisbee", "explain": True}}, "size": 3}


class _Output:
    """A process's output lines, read as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert process.stdout is not None
        self._reader = threading.Thread(target=lambda: self.lines.extend(process.stdout or ()), daemon=True)
        self._reader.start()

    def wait_for(self, text: str, count: int, *, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while sum(text in line for line in self.lines) < count:
            assert time.monotonic() < deadline, f"{count} x {text!r} not seen in:\n{''.join(self.lines)}"
            time.sleep(0.1)


def _workers(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """The command's worker processes (spawned interpreters; not multiprocessing's resource tracker)."""
    return [child for child in psutil.Process(process.pid).children()
            if "spawn_main" in " ".join(child.cmdline()) and "resource_tracker" not in " ".join(child.cmdline())]


def _hits(url: str, index: str) -> list[tuple[str, float, str]]:
    """Each hit's id, score (to 4 places: a batched decode may differ from one alone in the last bits) and identifier."""
    answer = httpx.post(f"{url}/{index}/_search", json=QUERY, timeout=60)
    assert answer.status_code == 200, answer.text
    return [(hit["_id"], round(hit["_score"], 4), hit["_ssi"]["identifier"]) for hit in answer.json()["hits"]["hits"]]


@pytest.fixture
def workers(engine_url: str, trained_index: tuple[str, Path]) -> Iterator[tuple[str, subprocess.Popen[str], _Output]]:
    index, cache_dir = trained_index
    port = free_port()
    process = subprocess.Popen(
        serve_command("--upstream", engine_url, "--index", index, "--cache-dir", str(cache_dir), "--workers", "2",
                      "--port", str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    output = _Output(process)
    try:
        output.wait_for(STARTED, 2)
        yield f"http://127.0.0.1:{port}", process, output
    finally:
        left = _workers(process) if process.poll() is None else []
        process.kill()
        process.wait()
        for worker in left:
            worker.kill()


def test_workers_answer_as_one_process_does(
    workers: tuple[str, subprocess.Popen[str], _Output], engine_url: str, trained_index: tuple[str, Path]
) -> None:
    url, process, _ = workers
    index, cache_dir = trained_index
    with serve_process("--upstream", engine_url, "--index", index, "--cache-dir", str(cache_dir)) as (single, _):
        expected = _hits(single, index)
    assert expected
    pids = [worker.pid for worker in _workers(process)]
    assert len(pids) == 2

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: _hits(url, index), range(48)))
    assert all(answer == expected for answer in answers)

    process.send_signal(signal.SIGINT)  # Ctrl-C stops the workers and then the command
    assert process.wait(timeout=60) == 0
    assert not [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def test_a_dead_worker_is_replaced_while_the_other_answers(
    workers: tuple[str, subprocess.Popen[str], _Output], trained_index: tuple[str, Path]
) -> None:
    url, process, output = workers
    index, _ = trained_index
    expected = _hits(url, index)
    victim, survivor = _workers(process)
    victim.kill()
    answers = [_hits(url, index) for _ in range(10)]  # the survivor answers while the dead one is replaced
    output.wait_for(STARTED, 3)
    assert all(answer == expected for answer in answers)
    now = _workers(process)
    assert survivor in now and victim not in now and len(now) == 2
    with ThreadPoolExecutor(8) as pool:
        assert all(answer == expected for answer in pool.map(lambda _: _hits(url, index), range(16)))


def test_workers_that_cannot_start_stop_the_command(engine_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        serve_command("--upstream", engine_url, "--index", "no-such-index", "--cache-dir", str(tmp_path), "--workers", "2",
                      "--port", str(free_port())),
        capture_output=True, text=True, timeout=180, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "the workers could not start" in output
    # Each worker says why once: a worker that fails at start is not started again and again.
    assert 1 <= output.count("no generator for index 'no-such-index'") <= 2, output
