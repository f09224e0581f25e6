"""A local OpenSearch cluster of three nodes (``engine start --nodes 3``): the cluster leg, and nodes killed mid-job.

The cluster starts once for the module, in a temporary cache folder, attached to the test session (its JVMs go
with it). Its indices have 3 shards and 1 replica, so each node holds primaries and replicas. The leg: setup and
reindex run as commands given no URL (they find the cluster as they would find the single node); ingest, search
and serve go through the Python API. Then the elected cluster manager is SIGKILLed in the middle of an ingest and
of a reindex that talk to another node: the job completes, or a rerun with ``--resume`` does, with every document
present exactly once; started again on its own data, the node rejoins and the cluster is green again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from job_support import assert_one_line, command, count, dataset_ids, index_ids, start_job
from tiny_generator import IMAGES, index_with_generator

from ssi_plugin import SSIIndex, create_app
from ssi_plugin.config import EngineSettings
from ssi_plugin.engine import EngineClient, connect
from ssi_plugin.engine.layout import cluster_layout, index_body, install_layout
from ssi_plugin.engine.local_cluster import LocalCluster
from ssi_plugin.engine.local_node import NodeStatus
from ssi_plugin.serving.server import serve_in_thread

pytestmark = pytest.mark.engine

NODES = 3
SHARDS = {"number_of_shards": 3, "number_of_replicas": 1}
RECORDS = 2000
"""Synthetic records of the ingest that loses a node: about ten seconds on a three-node cluster on two cores."""
URL_VARIABLES = ("SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster-cache"), nodes=NODES)
    cluster.start(attached=True)  # gone with this process even if the session is killed
    yield cluster
    cluster.stop()


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic")
    command("data", "synthetic", str(out), "-n", str(RECORDS), "--no-images")
    return out / "dataset.jsonl"


def ssi_without_url(*args: str, cluster: LocalCluster) -> subprocess.CompletedProcess[str]:
    """``ssi-plugin ARGS`` with the cluster's cache folder and no cluster URL anywhere: it must find the cluster itself."""
    environment = {name: value for name, value in os.environ.items() if name not in URL_VARIABLES}
    return command(*args, "--cache-dir", str(cluster.cache_dir), check=False, env=environment)


def get(url: str, path: str, *, timeout: float = 10) -> Any:
    with urllib.request.urlopen(f"{url}{path}", timeout=timeout) as answer:
        return json.load(answer)


def create_ssi_index(engine: EngineClient, index: str) -> None:
    """An SSI index (the layout's mappings and pipeline) of 3 shards with 1 replica."""
    install_layout(engine)
    body = index_body(cluster_layout(engine).resources)
    engine.request("PUT", f"/{index}", body={**body, "settings": {**body["settings"], **SHARDS}})


def assert_spread(url: str, index: str) -> None:
    """Every shard's primary and replica are started, and each node holds some of them."""
    health = get(url, f"/_cluster/health/{index}?wait_for_status=green&timeout=60s", timeout=70)  # replicas copy meanwhile
    assert health["status"] == "green", health
    shards = get(url, f"/_cat/shards/{index}?format=json&h=shard,prirep,state,node")
    assert sorted((row["shard"], row["prirep"]) for row in shards) == [(str(n), kind) for n in range(3) for kind in "pr"]
    assert {row["state"] for row in shards} == {"STARTED"}
    assert {row["node"] for row in shards} == {f"node-{n}" for n in range(1, NODES + 1)}


def job_node_and_victim(cluster: LocalCluster) -> tuple[NodeStatus, int]:
    """A node for the job to talk to, and the number of the node to kill: the elected cluster manager, another one."""
    status = cluster.status()
    health = get(str(status.url), f"/_cluster/health?wait_for_status=green&wait_for_nodes={NODES}&timeout=60s", timeout=70)
    assert (health["status"], health["number_of_nodes"]) == ("green", NODES), health
    nodes = get(str(status.url), "/_cat/nodes?format=json&h=name,cluster_manager")
    manager = next(node["name"] for node in nodes if node["cluster_manager"] == "*")
    job_node = next(node for node in status.nodes if node.name != manager)
    return job_node, int(manager.removeprefix("node-"))


def kill_when(cluster: LocalCluster, number: int, job: subprocess.Popen[str], ready: Mapping[str, Any]) -> int:
    """SIGKILL node ``number`` once ``ready['index']`` holds ``ready['at_least']`` documents, the job still running;
    the documents it then held."""
    deadline = time.monotonic() + 300
    while (held := count(ready["url"], ready["index"])) < ready["at_least"]:
        assert job.poll() is None, f"the job ended before the node was killed: {job.communicate()[1][-3000:]}"
        assert time.monotonic() < deadline, "the job made no progress"
        time.sleep(0.1)
    assert job.poll() is None, "the job ended before the node was killed"
    pid = cluster.node(number).status().pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    return held


def restart_until_green(cluster: LocalCluster, number: int) -> None:
    """Start the killed node again on its own data; it rejoins, the shard copies it holds recover, and the cluster is green."""
    restarted = cluster.start_node(number, attached=True)
    assert restarted.running and restarted.version
    health = get(str(restarted.url), f"/_cluster/health?wait_for_status=green&wait_for_nodes={NODES}&timeout=120s", timeout=130)
    assert (health["status"], health["number_of_nodes"], health["timed_out"]) == ("green", NODES, False), health


def test_commands_given_no_url_find_the_cluster(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    status = ssi_without_url("engine", "status", cluster=cluster)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"running: opensearch cluster, {NODES} of {NODES} nodes running (health green, {NODES} joined)"
    members = cluster.status().nodes
    for line, node in zip(lines[1:], members, strict=True):
        assert line.startswith(f"  {node.name}: running at {node.url} (pid {node.pid}")

    for variable in URL_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    with connect(EngineSettings(cache_dir=cluster.cache_dir)) as engine:
        assert engine.url in {node.url for node in members}
        nodes = engine.request("GET", "/_nodes/settings")["nodes"].values()
    assert sorted(node["name"] for node in nodes) == [f"node-{n}" for n in range(1, NODES + 1)]
    for node in nodes:
        assert node["settings"]["network"]["host"] == "127.0.0.1"
        assert node["transport_address"].startswith("127.0.0.1:")
        assert "ingest" in node["roles"] and "cluster_manager" in node["roles"]

    single = ssi_without_url("engine", "start", cluster=cluster)
    assert single.returncode == 4 and "one local engine at a time" in single.stderr.splitlines()[-1], single.stderr
    again = ssi_without_url("engine", "start", "--nodes", str(NODES), cluster=cluster)
    assert again.returncode == 4 and "cluster is already running" in again.stderr.splitlines()[-1], again.stderr


def test_the_cluster_leg_setup_ingest_reindex_search_serve(cluster: LocalCluster, tmp_path: Path) -> None:
    url, models = str(cluster.status().url), tmp_path / "models-cache"
    setup = ssi_without_url("setup", cluster=cluster)
    assert setup.returncode == 0, setup.stderr
    assert len([line for line in setup.stdout.splitlines() if "created" in line or "unchanged" in line]) == 3, setup.stdout

    with connect(EngineSettings(url=url)) as engine:
        index_with_generator(engine, "ssi-leg", models, settings=SHARDS)
    assert_spread(url, "ssi-leg")
    more = tmp_path / "more.jsonl"
    more.write_text('{"id": "img-5", "captions": ["a horse jumping over a fence"]}\n'
                    '{"id": "img-6", "captions": ["a boat on a quiet lake"]}\n')
    with SSIIndex.connect(url, "ssi-leg", cache_dir=models) as images:
        summary = images.ingest(more, failures=tmp_path / "failures.jsonl", progress=False)
        assert (summary.indexed, summary.failed) == (2, 0)
        found = images.search("a horse jumping over a fence", size=5)
        assert "img-5" in [hit.id for hit in found.hits]
    everything = {*IMAGES, "img-5", "img-6"}

    with connect(EngineSettings(url=url)) as engine:  # the destination is made by hand: the template adds the SSI layout
        engine.request("PUT", "/ssi-leg-v2", body={"settings": SHARDS})
    reindex = ssi_without_url("reindex", "--source", "ssi-leg", "--dest", "ssi-leg-v2", "--alias", "ssi-leg-live",
                              "--failures", str(tmp_path / "v2.failures.jsonl"), cluster=cluster)
    assert reindex.returncode == 0, reindex.stderr
    assert "6 of 6 documents in ssi-leg-v2" in reindex.stdout and "alias ssi-leg-live -> ssi-leg-v2" in reindex.stdout
    assert sorted(index_ids(url, "ssi-leg-live")) == sorted(everything)
    assert get(url, "/ssi-leg-v2/_mapping")["ssi-leg-v2"]["mappings"]["properties"]["ssi"]["properties"]["id"]["type"] == "keyword"
    assert_spread(url, "ssi-leg-v2")

    with serve_in_thread(create_app(url, index="ssi-leg", cache_dir=models)) as served:
        answer = httpx.post(f"{served}/ssi-leg/_search", json={"query": {"ssi": {"query": "a dog in the park"}}, "size": 3})
        assert answer.status_code == 200, answer.text
        assert 1 <= len(hits := answer.json()["hits"]["hits"]) <= 3
        assert {hit["_id"] for hit in hits} <= everything
        plain = httpx.post(f"{served}/ssi-leg/_search", json={"query": {"match": {"caption": "cat"}}}).json()
        assert plain["_shards"]["total"] == 3 and [hit["_id"] for hit in plain["hits"]["hits"]] == ["img-3"]
        assert httpx.get(f"{served}/_ssi/health").json()["indices"]["ssi-leg"]["images"] == len(everything)


def test_an_ingest_completes_when_a_node_is_killed_mid_run(cluster: LocalCluster, dataset: Path, tmp_path: Path) -> None:
    job_node, victim = job_node_and_victim(cluster)
    url = str(job_node.url)
    with connect(EngineSettings(url=url)) as engine:
        create_ssi_index(engine, "ssi-killed-ingest")
    job = start_job("ingest", str(dataset), "--index", "ssi-killed-ingest", "--chunk-size", "50",
                    "--failures", str(tmp_path / "failures.jsonl"), "--url", url)
    held = kill_when(cluster, victim, job, {"url": url, "index": "ssi-killed-ingest", "at_least": 200})
    assert held < RECORDS, "the node was killed mid-run"
    _, stderr = job.communicate(timeout=300)
    assert job.returncode == 0, stderr[-3000:]  # primaries on the lost node: their replicas were promoted, nothing failed

    ids = index_ids(url, "ssi-killed-ingest")
    assert len(ids) == len(set(ids)) == RECORDS
    assert set(ids) == dataset_ids(dataset)
    restart_until_green(cluster, victim)
    assert count(url, "ssi-killed-ingest") == RECORDS


def test_a_reindex_that_loses_a_node_completes_or_resumes(cluster: LocalCluster, tmp_path: Path) -> None:
    job_node, victim = job_node_and_victim(cluster)
    url = str(job_node.url)
    with connect(EngineSettings(url=url)) as engine:  # documents without identifiers: reindex annotates each one
        engine.request("PUT", "/raw", body={"settings": SHARDS})
        actions = ({"_op_type": "index", "_index": "raw", "_id": f"d{n}", "_source": {"caption": f"a red kite number {n} over the sea"}}
                   for n in range(1500))
        assert all(outcome.ok for outcome in engine.bulk(actions, chunk_size=500))
        engine.refresh("raw")
        create_ssi_index(engine, "ssi-fresh")
    reindex = ("reindex", "--source", "raw", "--dest", "ssi-fresh", "--chunk-size", "50", "--failures", str(tmp_path / "failures.jsonl"),
               "--url", url)
    job = start_job(*reindex)
    kill_when(cluster, victim, job, {"url": url, "index": "ssi-fresh", "at_least": 100})
    _, stderr = job.communicate(timeout=300)
    if job.returncode != 0:  # the scroll read some shards from the lost node: the job stops rather than copy part of them
        # The engine reports the lost shards in the page's ``_shards`` (ShardsFailed), or fails the whole scroll
        # request with its own 500 (a search phase that failed on the lost node): either way one named line, exit 3.
        assert_one_line(stderr, job.returncode, 3, (
            "ShardsFailed: ", "EngineRequestError: POST /_search/scroll failed with 500: search_phase_execution_exception"))
        command(*reindex, "--resume")  # the node is still down: the rerun reads the promoted copies

    ids = index_ids(url, "ssi-fresh")
    assert len(ids) == len(set(ids)) == 1500
    assert set(ids) == {f"d{n}" for n in range(1500)}
    restart_until_green(cluster, victim)
    assert count(url, "ssi-fresh") == 1500
