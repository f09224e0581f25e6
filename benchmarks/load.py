"""Load and faults: ``ssi-plugin serve``, in a process of its own, under concurrent clients.

Three parts; ``--only`` runs some of them, all run by default:

``ssi``
    ``ssi`` queries only, from 1, 4 and 16 clients (``--clients``), ``--seconds``
    each (20; quick: 3), after 5 s (quick: 1 s) of the most clients, untimed: each
    query word's first embedding and the first calls are not counted. Target: at
    least 50 queries/s with p99 at most 200 ms at 16 clients on a 2-core machine.
    Each run also gives the CPU time serve spent per query (its workers included),
    the engine's (when it runs on this machine) and how many cores were busy.
``mixed``
    16 clients for 60 s (``--mixed-seconds``; quick: 3), each request drawn by a
    seeded RNG: 80 % pass-through (60 % a ``match`` on ``caption`` through
    ``_search``, 10 % a ``_count`` of the same query, 10 % ``GET /<index>/_doc/<id>``)
    and 20 % ``ssi`` queries. Figures per kind, and serve's resident memory (RSS,
    read from /proc) when the run starts and when it ends; the same mix runs 5 s
    (quick: 1 s) before, so that first-use allocations do not count as growth.
    Targets: no errors, RSS growth at most 10 %.
``outage``
    The mixed workload from 16 clients on a node the benchmark starts itself, in a
    temporary folder, with its own synthetic index and serve process: it never
    kills the configured engine, only a node it owns. The index is flushed (at
    rest: a fresh one would make the restarted node replay its translog first).
    After 5 s (quick: 2) the node is killed (SIGKILL: a crash, which is what
    "killed" means; SIGSTOP would model a hung engine, another fault), left down
    10 s (``--outage-seconds``; quick: 3), started again on the same port with
    its data, and the clients keep going 20 s (quick: 6) after its index is
    searchable again (health yellow: the engine's return). Figures: what was
    answered meanwhile (statuses, error types, whether every error had the
    engine's error shape, the slowest failure of each kind to a request sent after
    the kill: those in flight at the kill waited under the load before it; and the slowest
    request the returning engine answered), when the last failure
    was sent after the index's return (``recovered_s``) and after the node's
    start (``recovered_from_node_start_s``), errors sent later than 5 s after the
    return, and serve's trie: ``/_ssi/health`` during and after, and how long 20
    images written after the return take to reach it. Targets: while the engine
    is away only 502/503 in the engine's error shape, none slower than 1 s (a request
    the returning engine answers is not a failure: it waits as a query under load
    does); every request sent 5 s or more after the engine's return succeeds.

Every answer other than 200 is an error and is counted, requests that got no
answer too (by the transport error's name); latencies include errors. Each
client is a thread with its own kept-alive connection, sending one request after
another. The index holds the synthetic corpus's SSI fields and first captions
(100k images; quick: 2k) and the generator is the default architecture as
initialised (untrained, as in ``benchmarks.scale``: flat distributions, an upper
bound for a trained model's decoding time); ``--index`` and ``--model`` run the
``ssi`` and ``mixed`` parts on an existing index and generator folder instead
(left as they are).

    python -m benchmarks.load [--quick] [--only ssi mixed outage] [--json FILE]     # CI runs --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httpx
import psutil

from benchmarks.scale import SEED, _fill, _generator_folder, _percentile, _texts, serve_process
from ssi_plugin.config import EngineSettings, default_cache_dir
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.layout import index_body, install_layout
from ssi_plugin.engine.local_node import LAUNCHER_CACHE_ENV, LocalNode
from ssi_plugin.errors import EngineError
from ssi_plugin.identifiers import CollisionResolver
from ssi_plugin.indexing.documents import CAPTION_FIELD

PARTS = ("ssi", "mixed", "outage")
CLIENTS = (1, 4, 16)
MIXED_CLIENTS = 16
SSI_ONLY = (("ssi", 1.0),)
MIX = (("ssi", 0.2), ("search", 0.6), ("count", 0.1), ("get", 0.1))
"""Each kind of request and its share: 20 % ssi queries, 80 % pass-through."""
OUTAGE_STATUSES = ("502", "503")
RECOVERY_S = 5.0
NEW_IMAGES = 20
TARGETS = {"queries_per_s_min_at_16": 50.0, "p99_ms_max_at_16": 200.0, "mixed_errors_max": 0,
           "mixed_rss_growth_pct_max": 10.0, "outage_statuses": list(OUTAGE_STATUSES), "outage_slowest_ms_max": 1000.0,
           "outage_recovered_s_max": RECOVERY_S, "outage_errors_after_recovery_max": 0}


@dataclass(frozen=True)
class Workload:
    """What the clients send to ``index``: each kind of request of ``mix`` with its share, drawn by a client's RNG.

    ``texts`` are the query texts (an ``ssi`` query, a ``match`` on ``caption``), ``ids`` the documents ``get`` reads.
    """

    index: str
    texts: Sequence[str]
    ids: Sequence[str] = ()
    mix: tuple[tuple[str, float], ...] = SSI_ONLY

    def request(self, rng: random.Random, n: int) -> tuple[str, str, str, dict[str, Any] | None]:
        """A client's ``n``-th request: (kind, method, path, body)."""
        kind = self.mix[0][0] if len(self.mix) == 1 else rng.choices([k for k, _ in self.mix], [w for _, w in self.mix])[0]
        text = self.texts[n % len(self.texts)]
        search = f"/{self.index}/_search"
        if kind == "ssi":
            return kind, "POST", search, {"size": 10, "_source": False, "query": {"ssi": {"query": text}}}
        if kind == "search":
            return kind, "POST", search, {"size": 10, "_source": False, "query": {"match": {CAPTION_FIELD: text}}}
        if kind == "count":
            return kind, "POST", f"/{self.index}/_count", {"query": {"match": {CAPTION_FIELD: text}}}
        if kind == "get":
            return kind, "GET", f"/{self.index}/_doc/{self.ids[n % len(self.ids)]}", None
        raise ValueError(f"no such kind of request: {kind!r}")


class Answer(NamedTuple):
    """One request as the client saw it."""

    kind: str
    started: float  # time.perf_counter() when it was sent
    ms: float
    status: str  # the HTTP status, or the transport error's name when no answer came
    error: str | None  # for an HTTP error: the error type of a body in the engine's shape, else "unshaped"

    @property
    def ended(self) -> float:
        return self.started + self.ms / 1000


@dataclass(frozen=True)
class Run:
    clients: int
    began: float
    ended: float
    answers: list[Answer]

    @property
    def seconds(self) -> float:
        return self.ended - self.began


def engine_error_type(status: int, body: bytes) -> str:
    """The error type of an answer in the engine's error shape (``{"error": {"root_cause": [...], "type", "reason"},
    "status"}``, the status the answer's own), else ``"unshaped"``."""
    try:
        document = json.loads(body)
    except ValueError:
        return "unshaped"
    error = document.get("error") if isinstance(document, dict) else None
    if (isinstance(error, dict) and isinstance(error.get("type"), str) and isinstance(error.get("reason"), str)
            and isinstance(error.get("root_cause"), list) and document.get("status") == status):
        return str(error["type"])
    return "unshaped"


def drive(url: str, workload: Workload, clients: int, scenario: float | Callable[[], object], *, seed: int = SEED) -> Run:
    """``clients`` threads sending ``workload``'s requests to ``url`` until ``scenario`` returns (a number: that many
    seconds); every answer, errors included. ``scenario`` runs in this thread while the clients run."""
    answers: list[Answer] = []
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    stop = threading.Event()

    def client(offset: int) -> None:
        rng = random.Random(f"{seed}:{offset}")
        mine: list[Answer] = []
        with httpx.Client(base_url=url, timeout=60) as http:
            n = offset
            start.wait()
            while not stop.is_set():
                kind, method, path, body = workload.request(rng, n)
                started = time.perf_counter()
                try:
                    response = http.request(method, path, json=body)
                    status = str(response.status_code)
                    error = None if response.status_code == 200 else engine_error_type(response.status_code, response.content)
                except httpx.HTTPError as exc:
                    status, error = type(exc).__name__, None
                mine.append(Answer(kind, started, (time.perf_counter() - started) * 1000, status, error))
                n += clients
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=client, args=(offset,)) for offset in range(clients)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    try:
        if callable(scenario):
            scenario()
        else:
            time.sleep(scenario)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return Run(clients, began, time.perf_counter(), sorted(answers, key=lambda answer: answer.started))


def summary(answers: Sequence[Answer], seconds: float) -> dict[str, Any]:
    """Count, rate, latency percentiles and errors by status of ``answers`` over ``seconds``."""
    statuses = Counter(answer.status for answer in answers)
    errors = {status: count for status, count in sorted(statuses.items()) if status != "200"}
    latencies = [answer.ms for answer in answers]
    percentiles = {f"p{q}_ms": _percentile(latencies, q) if latencies else None for q in (50, 95, 99)}
    return {"queries": len(answers), "queries_per_s": round(len(answers) / seconds, 1) if seconds > 0 else 0.0,
            **percentiles, "errors": sum(errors.values()), "errors_by_status": errors}


def figures_of(run: Run) -> dict[str, Any]:
    """A run's figures; with more than one kind of request, each kind's too (``kinds``)."""
    row = {"clients": run.clients, "seconds": round(run.seconds, 2), **summary(run.answers, run.seconds)}
    kinds = sorted({answer.kind for answer in run.answers})
    if len(kinds) > 1:
        row["kinds"] = {kind: summary([a for a in run.answers if a.kind == kind], run.seconds) for kind in kinds}
    return row


# -- the parts ------------------------------------------------------------------------------------


def _serve_processes(serve: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """serve's command and, with ``--workers``, its workers."""
    command = psutil.Process(serve.pid)
    return [command, *command.children(recursive=True)]


def engine_process(url: str) -> psutil.Process | None:
    """The process that listens on the engine's port when it runs on this machine (none for a remote engine)."""
    address = urlsplit(url)
    if address.hostname not in {"127.0.0.1", "localhost", "::1"}:
        return None
    port = address.port or (443 if address.scheme == "https" else 80)
    try:
        listening = [c.pid for c in psutil.net_connections(kind="tcp")
                     if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid]
    except psutil.AccessDenied:  # a system that keeps other processes' sockets to itself
        return None
    return psutil.Process(listening[0]) if listening else None


def _busy_seconds() -> float:
    """CPU time the whole machine has spent on anything but idling and waiting for I/O."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def ssi_run(url: str, serve: subprocess.Popen[bytes], workload: Workload, clients: int, seconds: float, *,
            engine: psutil.Process | None = None) -> dict[str, Any]:
    """One run of ``ssi`` queries, with the CPU time serve spent per query: a figure of the work a query costs that
    moves less from day to day than queries/s on a shared machine. With the ``engine``'s process (on this machine),
    its CPU time per query too, and how many cores the machine kept busy: where serve, the engine and the clients
    fill every core, queries/s is what the machine has, whatever batching does."""

    def cpu_seconds(processes: list[psutil.Process]) -> float:
        return sum(sum(process.cpu_times()[:2]) for process in processes)

    engine_processes = [engine] if engine is not None else []
    serve_before, engine_before = cpu_seconds(_serve_processes(serve)), cpu_seconds(engine_processes)
    busy_before, started = _busy_seconds(), time.perf_counter()
    row = figures_of(drive(url, workload, clients, seconds))
    queries = max(row["queries"], 1)
    row["serve_cpu_ms_per_query"] = round((cpu_seconds(_serve_processes(serve)) - serve_before) * 1000 / queries, 2)
    row["engine_cpu_ms_per_query"] = (round((cpu_seconds(engine_processes) - engine_before) * 1000 / queries, 2)
                                      if engine is not None else None)
    row["busy_cores"] = round((_busy_seconds() - busy_before) / (time.perf_counter() - started), 2)
    return row


def mixed(url: str, serve: subprocess.Popen[bytes], workload: Workload, seconds: float, *, warmup: float) -> dict[str, Any]:
    """The mixed workload from 16 clients for ``seconds`` after a warm-up of ``warmup``; serve's RSS while it runs
    (with ``--workers``, of the command and its workers together)."""

    def resident() -> int:
        return sum(process.memory_info().rss for process in _serve_processes(serve))

    before_warmup = resident()
    drive(url, workload, MIXED_CLIENTS, warmup, seed=SEED + 1)
    rss: list[int] = []

    def sample_memory() -> None:
        deadline = time.perf_counter() + seconds
        rss.append(resident())
        while (left := deadline - time.perf_counter()) > 0:
            time.sleep(min(1.0, left))
            rss.append(resident())

    row = figures_of(drive(url, workload, MIXED_CLIENTS, sample_memory))
    mib = 2**20
    row["rss_mib"] = {"before_warmup": round(before_warmup / mib, 1), "start": round(rss[0] / mib, 1),
                      "end": round(rss[-1] / mib, 1), "peak": round(max(rss) / mib, 1)}
    row["rss_growth_pct"] = round((rss[-1] - rss[0]) / rss[0] * 100, 1)
    row["warmup_s"] = warmup
    return row


def outage(scratch: Path, folder: Path, texts: Sequence[str], *, size: int, lead: float, down: float, after: float,
           serve_options: Sequence[str] = ()) -> dict[str, Any]:
    """The mixed workload while a node of the benchmark's own is killed, left down ``down`` seconds and started again;
    the clients keep going ``after`` seconds once the index is searchable again."""
    os.environ.setdefault(LAUNCHER_CACHE_ENV, str(Path(os.environ.get("SSI_CACHE_DIR") or default_cache_dir()) / "launchers"))
    node = LocalNode(scratch / "outage-engine")
    started = time.perf_counter()
    engine_url = str(node.start(attached=True).url)
    result: dict[str, Any] = {"node_start_s": round(time.perf_counter() - started, 1), "images": size, "lead_s": lead,
                              "down_s": down, "after_s": after}
    try:
        with connect(EngineSettings(url=engine_url)) as engine:
            resolver = CollisionResolver()
            index = _synthetic_index(engine, size, resolver)
            engine.request("POST", f"/{index}/_flush")  # at rest, as the engine leaves an idle shard: no translog to replay
            workload = Workload(index, texts, _some_ids(engine, index), MIX)
            log = scratch / "outage-serve.log"
            with serve_process(engine_url, index, folder, scratch / "outage-cache", texts[0], options=serve_options,
                               log=log) as (url, _):
                marks: dict[str, float] = {}
                health: dict[str, Any] = {}

                def kill_and_restart() -> None:
                    time.sleep(lead)
                    pid = node.status().pid
                    assert pid is not None, "the benchmark's node is not running"
                    os.kill(pid, signal.SIGKILL)
                    marks["killed"] = time.perf_counter()
                    psutil.Process(pid).wait(30)
                    time.sleep(max(0.0, down - (time.perf_counter() - marks["killed"])))
                    health["during"] = _trie_health(url, index)
                    marks["restarting"] = time.perf_counter()
                    node.start(port=urlsplit(engine_url).port, attached=True)
                    marks["back"] = time.perf_counter()
                    _await_searchable(engine_url, index)
                    marks["searchable"] = time.perf_counter()
                    time.sleep(after)

                run = drive(url, workload, MIXED_CLIENTS, kill_and_restart, seed=SEED + 2)
                health["after"] = _trie_health(url, index)
                result.update(_outage_figures(run, marks))
                result["trie"] = {**health, "new_images_found_s": _new_images_found_s(engine, url, index, size, resolver)}
                result["serve_log_tracebacks"] = log.read_text(errors="replace").count("Traceback")
    finally:
        if node.status().running:
            node.stop()
    return result


def _await_searchable(engine_url: str, index: str, *, timeout: float = 120) -> None:
    """Return once the engine reports ``index``'s primaries started (health yellow or green), asking it directly."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            answer = httpx.get(f"{engine_url}/_cluster/health/{index}", params={"wait_for_status": "yellow", "timeout": "1s"},
                               timeout=10)
            if answer.status_code == 200 and answer.json().get("status") in ("yellow", "green"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the benchmark's node did not serve {index} again within {timeout:g} s")


def _outage_figures(run: Run, marks: dict[str, float]) -> dict[str, Any]:
    """Requests answered before the kill, those in flight or sent while the index was not served, and those sent
    once it was searchable again (``after``); recovery times from the index's return, and from the node's."""
    killed, back, searchable = marks["killed"], marks["back"], marks["searchable"]
    before = [a for a in run.answers if a.ended <= killed]
    during = [a for a in run.answers if a.started < searchable and a.ended > killed]
    after = [a for a in run.answers if a.started >= searchable]
    sent = [a for a in during if a.started >= killed]
    failed = [a for a in sent if a.status != "200"]
    errors = [a for a in during if a.status != "200"]
    failed_after = [a for a in after if a.status != "200"]
    late = [a for a in failed_after if a.started - searchable >= RECOVERY_S]
    after_node = [a for a in run.answers if a.started >= back and a.status != "200"]
    return {
        "killed_at_s": round(killed - run.began, 2),
        "restart_s": round(back - marks["restarting"], 1),
        "index_recovery_s": round(searchable - back, 1),
        "away_s": round(searchable - killed, 1),
        "before": summary(before, killed - run.began),
        "during": {
            **summary(during, searchable - killed),
            "statuses": dict(sorted(Counter(a.status for a in during).items())),
            "error_types": dict(sorted(Counter(f"{a.status} {a.error}" for a in errors).items())),
            "engine_shaped": all(a.error not in (None, "unshaped") for a in errors),
            # What a client sending during the outage waits: requests already in flight at the kill are left out
            # (they waited their turn under the load before it).
            "in_flight_at_kill": len(during) - len(sent),
            "slowest_error_ms": round(max((a.ms for a in failed), default=0.0), 1),
            "slowest_error_ms_by_kind": {kind: round(max(a.ms for a in failed if a.kind == kind), 1)
                                         for kind in sorted({a.kind for a in failed})},
            "slowest_answered_ms": round(max((a.ms for a in sent if a.status == "200"), default=0.0), 1),
            "p99_ms_sent": _percentile([a.ms for a in sent], 99) if sent else 0.0,
        },
        "after": summary(after, run.ended - searchable),
        "recovered_s": round(max((a.started - searchable for a in failed_after), default=0.0), 2),
        "recovered_from_node_start_s": round(max((a.started - back for a in after_node), default=0.0), 2),
        "errors_after_recovery": len(late),
        "errors_after_recovery_by_status": dict(sorted(Counter(a.status for a in late).items())),
        "after_recovery": summary([a for a in after if a.started - searchable >= RECOVERY_S],
                                  run.ended - searchable - RECOVERY_S),
    }


def _trie_health(url: str, index: str) -> dict[str, Any]:
    """serve's report on the index's trie (``/_ssi/health``): how many images, how stale, the last read's error."""
    try:
        answer = httpx.get(f"{url}/_ssi/health", timeout=10)
    except httpx.HTTPError as exc:
        return {"status": type(exc).__name__}
    if answer.status_code != 200:
        return {"status": answer.status_code}
    trie = answer.json()["indices"].get(index, {})
    return {"status": answer.json()["status"], "images": trie.get("images"), "stale_seconds": trie.get("stale_seconds"),
            "error": trie.get("error")}


def _new_images_found_s(engine: EngineClient, url: str, index: str, size: int, resolver: CollisionResolver,
                        *, timeout: float = 60) -> float | None:
    """Seconds from the refresh after ``NEW_IMAGES`` new images to serve's trie holding them (None: not within ``timeout``)."""
    _fill(engine, index, size, size + NEW_IMAGES, resolver, captions=True)
    written = time.perf_counter()
    while time.perf_counter() - written < timeout:
        if _trie_health(url, index).get("images") == size + NEW_IMAGES:
            return round(time.perf_counter() - written, 2)
        time.sleep(0.1)
    return None


# -- the run ----------------------------------------------------------------------------------------


def _synthetic_index(engine: EngineClient, size: int, resolver: CollisionResolver | None = None) -> str:
    index = f"bench-load-{size}-{uuid.uuid4().hex[:6]}"
    install_layout(engine)
    engine.request("PUT", f"/{index}", body=index_body())
    _fill(engine, index, 0, size, resolver or CollisionResolver(), captions=True)
    return index


def _some_ids(engine: EngineClient, index: str, count: int = 200) -> list[str]:
    hits = engine.search(index, {"size": count, "_source": False, "sort": ["_doc"]})["hits"]["hits"]
    return [hit["_id"] for hit in hits]


@contextmanager
def _index_on(engine: EngineClient, index: str | None, size: int, figures: dict[str, Any]) -> Iterator[str]:
    """``index``, or a synthetic one of ``size`` images made for the run and deleted after it."""
    if index is not None:
        yield index
        return
    started = time.perf_counter()
    index = _synthetic_index(engine, size)
    figures.update(images=size, fill_s=round(time.perf_counter() - started, 1))
    try:
        yield index
    finally:
        try:
            engine.request("DELETE", f"/{index}", params={"ignore_unavailable": "true"})
        except EngineError as exc:  # the figures stand; say what is left behind
            print(f"benchmarks.load: could not delete {index}: {exc}", file=sys.stderr)


def run(quick: bool = False, *, only: Sequence[str] = PARTS, index: str | None = None, model: Path | None = None,
        seconds: float | None = None, clients: tuple[int, ...] = CLIENTS, serve_options: tuple[str, ...] = (),
        mixed_seconds: float | None = None, outage_seconds: float | None = None) -> dict[str, Any]:
    size = 2_000 if quick else 100_000
    seconds = seconds or (3.0 if quick else 20.0)
    warmup = 1.0 if quick else 5.0
    texts = _texts()
    figures: dict[str, Any] = {"parts": [part for part in PARTS if part in only], "load_average_1m": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="ssi-bench-load-") as tmp:
        scratch = Path(tmp)
        default_folder: list[Path] = []

        def untrained() -> Path:
            if not default_folder:
                default_folder.append(_generator_folder(scratch / "generator"))
            return default_folder[0]

        if "ssi" in only or "mixed" in only:
            with connect(EngineSettings()) as engine, _index_on(engine, index, size, figures) as name:
                figures.update(engine=f"{engine.kind} {engine.info.version}", index=name, seconds_per_run=seconds)
                with serve_process(engine.url, name, model or untrained(), scratch / "cache", texts[0],
                                   options=serve_options) as (url, serve):
                    if "ssi" in only:
                        workload = Workload(name, texts)
                        figures["ssi_warmup_s"] = warmup
                        drive(url, workload, max(clients), warmup)  # each query's first words and calls are not timed
                        local = engine_process(engine.url)
                        figures["runs"] = [ssi_run(url, serve, workload, count, seconds, engine=local) for count in clients]
                    if "mixed" in only:
                        workload = Workload(name, texts, _some_ids(engine, name), MIX)
                        figures["mixed"] = mixed(url, serve, workload, mixed_seconds or (3.0 if quick else 60.0),
                                                 warmup=warmup)
        if "outage" in only:
            down = outage_seconds or (3.0 if quick else 10.0)
            figures["outage"] = outage(scratch, untrained(), texts, size=size, lead=2.0 if quick else 5.0, down=down,
                                       after=6.0 if quick else 20.0, serve_options=serve_options)
    figures["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    figures["targets"] = TARGETS
    figures["targets_met"] = targets_met(figures)
    return figures


def targets_met(figures: dict[str, Any]) -> dict[str, bool]:
    """Each part's targets, for the parts that ran: met or not."""
    met: dict[str, bool] = {}
    at_16 = next((row for row in figures.get("runs", []) if row["clients"] == 16), None)
    if at_16 is not None:
        met["ssi_at_16"] = (at_16["errors"] == 0 and at_16["queries_per_s"] >= TARGETS["queries_per_s_min_at_16"]
                            and at_16["p99_ms"] <= TARGETS["p99_ms_max_at_16"])
    if "mixed" in figures:
        mixed = figures["mixed"]
        met["mixed_errors"] = mixed["errors"] <= TARGETS["mixed_errors_max"]
        met["mixed_rss_growth"] = mixed["rss_growth_pct"] <= TARGETS["mixed_rss_growth_pct_max"]
    if "outage" in figures:
        during = figures["outage"]["during"]
        met["outage_answers"] = (during["engine_shaped"] and set(during["statuses"]) <= {"200", *OUTAGE_STATUSES}
                                 and during["slowest_error_ms"] <= TARGETS["outage_slowest_ms_max"])
        met["outage_recovery"] = (figures["outage"]["recovered_s"] <= TARGETS["outage_recovered_s_max"]
                                  and figures["outage"]["errors_after_recovery"] <= TARGETS["outage_errors_after_recovery_max"])
    return met


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _rows(rows: list[tuple[str, dict[str, Any]]], first: str) -> list[str]:
    header = f"{first:>9}  {'queries':>7}  {'queries/s':>9}  {'p50 ms':>8}  {'p95 ms':>8}  {'p99 ms':>8}  {'errors':>6}"
    lines = [header, "-" * len(header)]
    lines += [f"{name:>9}  {row['queries']:>7}  {row['queries_per_s']:>9.1f}  {_ms(row['p50_ms']):>8}  {_ms(row['p95_ms']):>8}  "
              f"{_ms(row['p99_ms']):>8}  {row['errors']:>6}" + (f"  {json.dumps(row['errors_by_status'])}" if row["errors"] else "")
              for name, row in rows]
    return lines


def table(figures: dict[str, Any]) -> str:
    """The figures as plain text: one row per client count, one per kind of the mixed run, the outage's story."""
    lines: list[str] = []
    if "runs" in figures:
        lines += ["ssi queries only", *_rows([(str(row["clients"]), row) for row in figures["runs"]], "clients"),
                  "serve CPU per query: " + ", ".join(f"{row['serve_cpu_ms_per_query']:.1f} ms at {row['clients']} clients"
                                                      for row in figures["runs"]),
                  *(["engine CPU per query: " + ", ".join(f"{row['engine_cpu_ms_per_query']:.1f} ms" for row in figures["runs"])]
                    if all(row.get("engine_cpu_ms_per_query") is not None for row in figures["runs"]) else []),
                  "busy cores: " + ", ".join(f"{row['busy_cores']:.2f} of {psutil.cpu_count()}" for row in figures["runs"]), ""]
    if "mixed" in figures:
        mixed = figures["mixed"]
        rss = mixed["rss_mib"]
        lines += [f"mixed, {mixed['clients']} clients, {mixed['seconds']:.0f} s",
                  *_rows([*mixed.get("kinds", {}).items(), ("all", mixed)], "kind"),
                  f"serve RSS {rss['start']:.0f} -> {rss['end']:.0f} MiB ({mixed['rss_growth_pct']:+.1f} %), "
                  f"peak {rss['peak']:.0f} MiB", ""]
    if "outage" in figures:
        outage = figures["outage"]
        during = outage["during"]
        trie = outage["trie"]
        lines += [f"outage: engine killed at {outage['killed_at_s']:.1f} s, index searchable again {outage['away_s']:.1f} s later "
                  f"(node start {outage['restart_s']:.1f} s, then index recovery {outage['index_recovery_s']:.1f} s)",
                  *_rows([("before", outage["before"]), ("during", during), ("after", outage["after"]),
                          (f"after {RECOVERY_S:g}s", outage["after_recovery"])], "window"),
                  f"during: {json.dumps(during['error_types'])}; engine-shaped: {during['engine_shaped']}; "
                  f"sent while away: p99 {during['p99_ms_sent']:.0f} ms, slowest failure {during['slowest_error_ms']:.0f} ms "
                  f"{json.dumps(during['slowest_error_ms_by_kind'])}, slowest answered by the returning engine "
                  f"{during['slowest_answered_ms']:.0f} ms ({during['in_flight_at_kill']} in flight at the kill)",
                  f"after the index's return: last failure sent at +{outage['recovered_s']:.2f} s "
                  f"(+{outage['recovered_from_node_start_s']:.2f} s after the node's); "
                  f"{outage['errors_after_recovery']} errors sent {RECOVERY_S:g} s or more after it",
                  f"trie: during {json.dumps(trie['during'])}; after {json.dumps(trie['after'])}; "
                  f"{NEW_IMAGES} new images found in {trie['new_images_found_s']} s", ""]
    if figures.get("targets_met"):
        lines.append("targets met: " + ", ".join(f"{name} {'yes' if ok else 'NO'}" for name, ok in figures["targets_met"].items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2k images, a few seconds per run (CI runs it)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS), help="parts to run (default: all)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the figures here as JSON")
    parser.add_argument("--seconds", type=float, help="how long each client count of the ssi part runs (default: 20, quick: 3)")
    parser.add_argument("--clients", type=int, nargs="+", default=list(CLIENTS), help="client counts of the ssi part (default: 1 4 16)")
    parser.add_argument("--mixed-seconds", type=float, help="how long the mixed run lasts (default: 60, quick: 3)")
    parser.add_argument("--outage-seconds", type=float, help="how long the engine stays down (default: 10, quick: 3)")
    parser.add_argument("--index", help="an existing index for the ssi and mixed parts (left as it is) instead of a synthetic one")
    parser.add_argument("--model", type=Path, help="generator folder for --index (default: the untrained default architecture)")
    parser.add_argument("--ssi-concurrency", type=int, help="passed to serve")
    parser.add_argument("--workers", type=int, help="passed to serve (default: serve's, one process)")
    args = parser.parse_args(argv)
    if args.model and not args.index:
        parser.error("--model goes with --index")
    options = (*(("--ssi-concurrency", str(args.ssi_concurrency)) if args.ssi_concurrency else ()),
               *(("--workers", str(args.workers)) if args.workers else ()))
    figures = run(args.quick, only=args.only, index=args.index, model=args.model, seconds=args.seconds,
                  clients=tuple(args.clients), serve_options=options, mixed_seconds=args.mixed_seconds,
                  outage_seconds=args.outage_seconds)
    print(table(figures))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
