"""A local OpenSearch cluster: several nodes of the embedded launcher on loopback (``engine start --nodes 3``).

Each member is a ``LocalNode`` with a folder of its own, ``<cache_dir>/<kind>/cluster/node-<i>/`` (data, log,
state and ready files as for the single node), started with a ``Discovery``: its name, its transport port, and
every member's transport port as seed hosts. ``cluster.json`` beside the members records the layout (names,
ports, heap) from ``start`` until ``stop``. While it is there the cluster is the cache directory's local engine
(``local_engine``): commands given no URL connect to one of its members, and start the members that are not
running, as they would start the single node. A member that stopped, or was killed, starts again on its recorded
ports with its own data and rejoins (``start_node``).

The single node and the cluster are alternatives: one of them runs at a time, so a command without a URL always
has exactly one local engine (``start_local_engine`` refuses the other while one is there).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from ssi_plugin.engine.local_node import (
    Discovery,
    LocalNode,
    NodeStatus,
    Progress,
    _claim_port,
    _quiet,
    _write_atomic,
    make_folder,
)
from ssi_plugin.errors import ConfigError, LocalNodeError

CLUSTER_HEAP = "512m"
"""Each member's JVM heap: three members fit beside the rest of a small machine's work."""
MAX_NODES = 9


class ClusterStatus(BaseModel):
    """Each member's status, and the cluster's health as a running member reports it.

    ``health`` (green, yellow or red) and ``joined`` (the nodes the cluster counts) are None when no member answers.
    """

    kind: str
    nodes: list[NodeStatus]
    health: str | None = None
    joined: int | None = None

    @property
    def running(self) -> bool:
        """True while any member runs."""
        return any(node.running for node in self.nodes)

    @property
    def url(self) -> str | None:
        """The URL of the first member that serves requests: any member's URL reaches the whole cluster."""
        return next((node.url for node in self.nodes if node.running and node.version), None)

    @property
    def version(self) -> str | None:
        return next((node.version for node in self.nodes if node.running and node.version), None)


class _Layout(BaseModel):
    """``cluster.json``: the members' names and ports (in member order) and their heap."""

    names: list[str]
    http_ports: list[int]
    transport_ports: list[int]
    heap: str


class LocalCluster:
    """A local cluster of ``nodes`` OpenSearch nodes per cache directory, shared by every process.

    ``nodes`` is the size ``start`` gives a new cluster; once started, the recorded layout decides.
    """

    def __init__(
        self, cache_dir: Path, *, kind: Literal["opensearch", "elasticsearch"] = "opensearch", nodes: int = 3, heap: str = CLUSTER_HEAP
    ) -> None:
        if kind != "opensearch":
            raise ConfigError(f"a local cluster runs OpenSearch only: the local {kind} node runs as a single node (leave out --nodes)")
        if not 2 <= nodes <= MAX_NODES:
            raise ConfigError(f"a local cluster has 2 to {MAX_NODES} nodes, not {nodes} (one node is the single local node)")
        LocalNode(cache_dir, kind=kind, heap=heap)  # the same checks of kind and heap
        self.kind: Literal["opensearch", "elasticsearch"] = kind
        self.heap = heap
        self.cache_dir = Path(cache_dir).expanduser()
        self.root = self.cache_dir / kind / "cluster"
        self._size = nodes
        self._layout_file = self.root / "cluster.json"

    @classmethod
    def configured(cls, cache_dir: Path, *, kind: Literal["opensearch", "elasticsearch"] = "opensearch") -> LocalCluster | None:
        """The cluster set up in ``cache_dir`` (started and not stopped since), None when there is none."""
        if kind != "opensearch":
            return None
        cluster = cls(cache_dir, kind=kind)
        layout = cluster._read_layout()
        return None if layout is None else cls(cache_dir, kind=kind, nodes=len(layout.names), heap=layout.heap)

    @property
    def size(self) -> int:
        """How many members the cluster has: as recorded while it is set up, else as it would be started."""
        layout = self._read_layout()
        return len(layout.names) if layout else self._size

    def node(self, number: int) -> LocalNode:
        """Member ``node-<number>`` (1 to ``size``), with its recorded ports while the cluster is set up."""
        if not 1 <= number <= self.size:
            raise ConfigError(f"the local cluster has nodes 1 to {self.size}, not {number}")
        return self._member(number, self._read_layout())

    # -- public API ---------------------------------------------------------

    def status(self) -> ClusterStatus:
        """Each member's status and, when one answers, the cluster's health; changes nothing."""
        nodes = [self._member(number, None).status() for number in range(1, self.size + 1)]
        status = ClusterStatus(kind=self.kind, nodes=nodes)
        health = _get_json(f"{status.url}/_cluster/health", timeout=5) if status.url else None
        if health is None:
            return status
        return status.model_copy(update={"health": str(health.get("status")), "joined": int(str(health.get("number_of_nodes", 0)))})

    def start(
        self, *, port: int | None = None, timeout: float = 300, progress: Progress | None = None, attached: bool = False
    ) -> ClusterStatus:
        """Start every member together and wait until all have joined one cluster; refuse if a member already runs.

        ``port`` is the first member's HTTP port (the others take free ones); ``attached`` as for ``LocalNode.start``.
        Members started before keep their data: the cluster comes back with its indices.
        """
        say = progress or _quiet
        self._make_root()
        with self._lock():
            running = [node for node in self.status().nodes if node.running]
            if running:
                where = ", ".join(f"{node.name} at {node.url or '(starting)'}" for node in running)
                raise LocalNodeError(f"the local {self.kind} cluster is already running ({where}); "
                                     "stop it first with `ssi-plugin engine stop`")
            layout = self._new_layout(port)
            _write_atomic(self._layout_file, layout.model_dump_json())
            self._start_members(range(1, len(layout.names) + 1), layout, timeout=timeout, attached=attached, say=say, all_or_none=True)
        return self._await_joined(len(layout.names), timeout=60)

    def start_node(
        self, number: int, *, timeout: float = 180, progress: Progress | None = None, attached: bool = False
    ) -> NodeStatus:
        """Start member ``number`` again (stopped, or killed) with its own data; it rejoins the running members."""
        layout = self._require_layout()
        self.node(number)  # a number out of range is named
        with self._lock():
            layout = self._reclaim_ports(layout, [number])
            return self._start_members([number], layout, timeout=timeout, attached=attached, say=progress or _quiet)[0]

    def ensure_running(self, progress: Progress | None = None) -> ClusterStatus:
        """The cluster once every member serves requests, starting those that do not run (a command given no URL)."""
        layout = self._require_layout()
        current = self.status()
        if all(node.running and node.version for node in current.nodes):
            return current
        with self._lock():
            statuses = [self._member(number, layout).status() for number in range(1, len(layout.names) + 1)]
            down = [number for number, node in enumerate(statuses, 1) if not node.running]
            layout = self._reclaim_ports(layout, down)
            self._start_members(down, layout, timeout=300, attached=False, say=progress or _quiet)
            for number, node in enumerate(statuses, 1):  # started by a process that left before they were ready
                if node.running and not node.version and node.pid is not None:
                    self._member(number, layout).wait_ready(node.pid)
        return self.status()

    def stop(self, *, timeout: float = 60) -> ClusterStatus:
        """Stop every running member (all at once) and forget the layout: commands given no URL use the single node again.

        The members' data stay: ``start`` brings the cluster back with its indices.
        """
        members = [self._member(number, None) for number in range(1, self.size + 1)]
        running = [node for node in members if node.status().running]
        if not running and self._read_layout() is None:
            raise LocalNodeError(f"no local {self.kind} cluster is running (data in {self.root}); nothing to stop")
        with ThreadPoolExecutor(max_workers=len(running) or 1) as pool:
            stopped = {node.name: status for node, status in zip(running, pool.map(lambda node: node.stop(timeout=timeout), running),
                                                                 strict=True)}
        with contextlib.suppress(FileNotFoundError):
            self._layout_file.unlink()
        return ClusterStatus(kind=self.kind, nodes=[stopped.get(node.name) or node.status() for node in members])

    # -- members ------------------------------------------------------------

    def _member(self, number: int, layout: _Layout | None) -> LocalNode:
        """Member ``number``; startable only with a ``layout`` (its discovery), else for status and stop."""
        name = f"node-{number}"
        discovery = None
        if layout is not None and name in layout.names:
            index = layout.names.index(name)
            discovery = Discovery(node_name=name, transport_port=layout.transport_ports[index],
                                  seed_ports=tuple(layout.transport_ports), managers=tuple(layout.names))
        return LocalNode(self.cache_dir, kind=self.kind, heap=layout.heap if layout else self.heap, root=self.root / name,
                         discovery=discovery)

    def _start_members(self, numbers: range | list[int], layout: _Layout, *, timeout: float, attached: bool, say: Progress,
                       all_or_none: bool = False) -> list[NodeStatus]:
        """Launch ``numbers`` together, then wait for each; ``all_or_none`` stops the others when one fails to start."""
        members = {number: self._member(number, layout) for number in numbers}
        pids: dict[int, int] = {}
        try:
            for number, member in members.items():
                pids[number] = member.launch(port=layout.http_ports[number - 1], progress=say, attached=attached)
            deadline = time.monotonic() + timeout
            return [members[number].wait_ready(pid, timeout=max(1.0, deadline - time.monotonic())) for number, pid in pids.items()]
        except BaseException:
            if all_or_none:
                for number in pids:
                    with contextlib.suppress(LocalNodeError):
                        members[number].stop(timeout=10)
            raise

    def _await_joined(self, expected: int, *, timeout: float) -> ClusterStatus:
        """The status once ``expected`` nodes have joined (each member is ready only once it has joined, so this is quick)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status.joined == expected:
                return status
            if time.monotonic() > deadline:
                raise LocalNodeError(f"only {status.joined or 0} of the {expected} local {self.kind} cluster nodes joined "
                                     f"within {timeout:.0f} s; see the logs in {self.root}")
            time.sleep(0.5)

    # -- the layout -----------------------------------------------------------

    def _new_layout(self, port: int | None) -> _Layout:
        """Names and free ports for a cluster of ``self._size`` (``port``, when given, is the first member's HTTP port)."""
        claimed: list[int] = [_claim_port(port)] if port is not None else []
        taken = set(claimed)
        claimed += [_fresh_port(taken) for _ in range(2 * self._size - len(claimed))]
        names = [f"node-{number}" for number in range(1, self._size + 1)]
        return _Layout(names=names, http_ports=claimed[: self._size], transport_ports=claimed[self._size :], heap=self.heap)

    def _reclaim_ports(self, layout: _Layout, numbers: list[int] | range) -> _Layout:
        """The layout with new ports for those of ``numbers`` that something else has taken meanwhile (saved if changed)."""
        taken = {*layout.http_ports, *layout.transport_ports}
        http, transport = list(layout.http_ports), list(layout.transport_ports)
        for number in numbers:
            for ports in (http, transport):
                if not _is_free(ports[number - 1]):
                    ports[number - 1] = _fresh_port(taken)
        changed = layout.model_copy(update={"http_ports": http, "transport_ports": transport})
        if changed != layout:
            _write_atomic(self._layout_file, changed.model_dump_json())
        return changed

    def _read_layout(self) -> _Layout | None:
        try:
            return _Layout.model_validate_json(self._layout_file.read_bytes())
        except (OSError, ValidationError):
            return None

    def _require_layout(self) -> _Layout:
        layout = self._read_layout()
        if layout is None:
            raise LocalNodeError(f"no local {self.kind} cluster is set up in {self.root}: "
                                 "start one with `ssi-plugin engine start --nodes 3`")
        return layout

    def _make_root(self) -> None:
        make_folder(self.root, "the local cluster")

    def _lock(self) -> FileLock:
        self._make_root()
        return FileLock(self.root / "start.lock")


# -- the local engine of a cache directory ----------------------------------------------


def local_engine(cache_dir: Path, *, kind: Literal["opensearch", "elasticsearch"] = "opensearch") -> LocalNode | LocalCluster:
    """The local engine of ``cache_dir``: its cluster while one is set up (started and not stopped), else the single node."""
    return LocalCluster.configured(cache_dir, kind=kind) or LocalNode(cache_dir, kind=kind)


def start_local_engine(
    cache_dir: Path, *, kind: Literal["opensearch", "elasticsearch"] = "opensearch", nodes: int = 1, port: int | None = None,
    progress: Progress | None = None,
) -> NodeStatus | ClusterStatus:
    """Start the single node (``nodes=1``) or a cluster of ``nodes``; refuse while the other one is there."""
    if nodes == 1:
        cluster = LocalCluster.configured(cache_dir, kind=kind)
        if cluster is not None:
            raise LocalNodeError(f"a local {kind} cluster of {cluster.size} nodes is set up in {cluster.root}: "
                                 "stop it first with `ssi-plugin engine stop` (one local engine at a time)")
        return LocalNode(cache_dir, kind=kind).start(port=port, progress=progress)
    new = LocalCluster(cache_dir, kind=kind, nodes=nodes)
    single = LocalNode(cache_dir, kind=kind).status()
    if single.running:
        raise LocalNodeError(f"the single local {kind} node is running at {single.url}: "
                             "stop it first with `ssi-plugin engine stop` (one local engine at a time)")
    return new.start(port=port, progress=progress)


# -- small helpers ----------------------------------------------------------------------


def _get_json(url: str, *, timeout: float) -> dict[str, object] | None:
    """The JSON object ``GET url`` answers, None when nothing answers in time."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _is_free(port: int) -> bool:
    try:
        _claim_port(port)
    except LocalNodeError:
        return False
    return True


def _fresh_port(taken: set[int]) -> int:
    while (port := _claim_port(None)) in taken:
        pass
    taken.add(port)
    return port

