"""The local cluster without starting a JVM: its layout, which local engine a cache folder has, and refusals named.

tests/integration/test_cluster.py starts a real one.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ssi_plugin.cli import engine as engine_cli
from ssi_plugin.engine import local_cluster
from ssi_plugin.engine.local_cluster import LocalCluster, local_engine, start_local_engine
from ssi_plugin.engine.local_node import Discovery, LocalNode
from ssi_plugin.errors import ConfigError, LocalNodeError


def set_up(cache_dir: Path, nodes: int = 3) -> Path:
    """A cluster.json as ``start`` leaves it (no member runs): the cache folder's local engine is then the cluster."""
    root = cache_dir / "opensearch" / "cluster"
    root.mkdir(parents=True)
    layout = {"names": [f"node-{n}" for n in range(1, nodes + 1)], "http_ports": list(range(9201, 9201 + nodes)),
              "transport_ports": list(range(9301, 9301 + nodes)), "heap": "512m"}
    (root / "cluster.json").write_text(json.dumps(layout))
    return root


def ssi_engine(*args: str, cache_dir: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if k not in ("SSI_ENGINE_URL", "ELASTICSEARCH_URL", "OPENSEARCH_URL")}
    return subprocess.run([sys.executable, "-m", "ssi_plugin", "engine", *args, "--cache-dir", str(cache_dir)],
                          check=False, capture_output=True, text=True, env=environment, timeout=120)


def test_a_member_is_started_with_every_members_transport_port_and_name() -> None:
    discovery = Discovery(node_name="node-2", transport_port=9302, seed_ports=(9301, 9302, 9303), managers=("node-1", "node-2", "node-3"))
    assert discovery.launcher_arguments() == [
        "--node-name", "node-2", "--transport-port", "9302",
        "--seed-hosts", "127.0.0.1:9301,127.0.0.1:9302,127.0.0.1:9303",
        "--initial-cluster-managers", "node-1,node-2,node-3",
    ]


def test_a_new_layout_takes_distinct_free_ports(tmp_path: Path) -> None:
    layout = LocalCluster(tmp_path, nodes=4)._new_layout(None)
    assert layout.names == ["node-1", "node-2", "node-3", "node-4"]
    assert len({*layout.http_ports, *layout.transport_ports}) == 8
    assert layout.heap == local_cluster.CLUSTER_HEAP


def test_bad_clusters_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="OpenSearch only"):
        LocalCluster(tmp_path, kind="elasticsearch")
    for nodes in (1, local_cluster.MAX_NODES + 1):
        with pytest.raises(ConfigError, match=f"2 to {local_cluster.MAX_NODES} nodes"):
            LocalCluster(tmp_path, nodes=nodes)
    with pytest.raises(ConfigError, match="not a JVM size"):
        LocalCluster(tmp_path, heap="lots")
    assert engine_cli.MAX_NODES == local_cluster.MAX_NODES


def test_the_local_engine_is_the_cluster_while_it_is_set_up(tmp_path: Path) -> None:
    assert isinstance(local_engine(tmp_path), LocalNode)
    root = set_up(tmp_path)
    cluster = local_engine(tmp_path)
    assert isinstance(cluster, LocalCluster) and cluster.size == 3
    member = cluster.node(2)
    assert member.name == "node-2" and member.data_dir == root / "node-2" / "data"
    assert member.discovery == Discovery(node_name="node-2", transport_port=9302, seed_ports=(9301, 9302, 9303),
                                         managers=("node-1", "node-2", "node-3"))
    with pytest.raises(ConfigError, match="nodes 1 to 3, not 4"):
        cluster.node(4)
    status = cluster.status()
    assert not status.running and status.url is None and status.health is None
    assert [node.name for node in status.nodes] == ["node-1", "node-2", "node-3"]

    with pytest.raises(LocalNodeError, match="one local engine at a time"):
        start_local_engine(tmp_path, nodes=1)
    cluster.stop()  # no member runs: forgetting the layout is all there is to do
    assert isinstance(local_engine(tmp_path), LocalNode)
    with pytest.raises(LocalNodeError, match="nothing to stop"):
        LocalCluster(tmp_path).stop()
    with pytest.raises(LocalNodeError, match="no local opensearch cluster is set up"):
        LocalCluster(tmp_path).start_node(2)


def test_a_member_without_its_cluster_is_not_started(tmp_path: Path) -> None:
    member = LocalNode(tmp_path, root=tmp_path / "opensearch" / "cluster" / "node-1")
    with pytest.raises(LocalNodeError, match=r"node-1 in .* has no cluster to join"):
        member.start()


def test_the_commands_on_a_cluster_that_does_not_run(tmp_path: Path) -> None:
    set_up(tmp_path)
    status = ssi_engine("status", cache_dir=tmp_path)
    assert status.returncode == 1
    assert status.stdout.splitlines()[0] == "not running: opensearch cluster, 0 of 3 nodes running (no node answers)"
    assert "  node-3: not running (data in " in status.stdout

    zero = ssi_engine("start", "--nodes", "0", cache_dir=tmp_path)
    assert zero.returncode == 2 and "'--nodes': 0 is not in the range 1<=x<=9" in zero.stderr
    elastic = ssi_engine("start", "--nodes", "3", "--engine", "elasticsearch", cache_dir=tmp_path)
    assert elastic.returncode == 2 and elastic.stderr.splitlines()[-1].startswith("ConfigError: a local cluster runs OpenSearch only")

    stopped = ssi_engine("stop", cache_dir=tmp_path)
    assert stopped.returncode == 0 and stopped.stdout == "Stopped local opensearch cluster (none was running).\n"
    assert ssi_engine("status", cache_dir=tmp_path).stdout.startswith("not running (data in ")
