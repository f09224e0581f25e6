"""The embedded local node: a real single-node engine assembled from Maven Central.

A small Java launcher (``integration/<kind>/``, a Maven project that also compiles
the shared ``integration/launcher-common/`` sources) is built on first use into the
cache directory, keyed by a hash of both so an edited launcher rebuilds. The JVM
runs detached from the calling process; it writes a ready file once it serves
requests, and a state file (pid, port, url) lets any later process find, report
or stop it. Everything a node owns lives under ``<cache_dir>/<kind>/``.

The members of a local cluster (``local_cluster.py``) are ``LocalNode`` objects too,
each in a folder of its own and started with its ``Discovery``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from ssi_plugin.errors import ConfigError, LocalNodeError, PrerequisiteMissing
from ssi_plugin.resources import project_dir

Progress = Callable[[str], None]

LAUNCHER_CACHE_ENV = "SSI_LAUNCHER_CACHE"
"""Where built launchers are kept (default ``<cache_dir>/launchers``); shared builds save a Maven run."""

_JVM_ROOTS = (Path("/usr/lib/jvm"), Path("/usr/java"), Path("/Library/Java/JavaVirtualMachines"))
_JDK_HINT = "apt-get install openjdk-17-jdk-headless"
_SHARED_SOURCES = "launcher-common"
"""The folder beside the launcher projects whose sources every launcher's pom compiles in (the shared protocol)."""

_JVM_OPTIONS = (
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
    "-Dfile.encoding=UTF-8",
    "-Dio.netty.noUnsafe=true",
    "-Dio.netty.noKeySetOptimization=true",
    "-Dio.netty.recycler.maxCapacityPerThread=0",
    "-Dlog4j2.disable.jmx=true",
)
"""Every launcher's JVM options; ``_Launcher.jvm_options`` adds an engine's own."""


@dataclass(frozen=True)
class _Launcher:
    """What differs between engines; every launcher speaks the same command-line protocol."""

    project: str  # Maven project folder under integration/
    main_class: str
    java: tuple[int, int]  # supported Java feature versions, inclusive
    jvm_options: tuple[str, ...] = ()  # beside _JVM_OPTIONS
    jdk_hint: str = _JDK_HINT


_LAUNCHERS: dict[str, _Launcher] = {
    "opensearch": _Launcher(
        project="opensearch",
        main_class="org.ssiplugin.launcher.OpenSearchLauncher",
        java=(17, 23),
        jvm_options=("-Djava.locale.providers=SPI,COMPAT",),
    ),
    # The Elasticsearch core: server + transport-netty4 only (integration/elasticsearch/README.md lists what works).
    "elasticsearch": _Launcher(
        project="elasticsearch",
        main_class="org.ssiplugin.launcher.ElasticsearchLauncher",
        java=(21, 25),
        jvm_options=(
            "-Djava.locale.providers=CLDR",
            "--add-modules=jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "-Dlog4j.shutdownHookEnabled=false",  # the node logs its own close
        ),
        jdk_hint="apt-get install openjdk-21-jdk-headless",
    ),
}


@dataclass(frozen=True)
class Discovery:
    """What makes a node one member of a local cluster on loopback rather than a single-node cluster.

    ``seed_ports``: every member's transport port (its own included, which the engine skips); ``managers``: every
    member's name, the cluster-manager-eligible nodes that bootstrap a new cluster.
    """

    node_name: str
    transport_port: int
    seed_ports: tuple[int, ...]
    managers: tuple[str, ...]

    def launcher_arguments(self) -> list[str]:
        """The launcher's cluster options (``LauncherSupport``)."""
        return [
            *("--node-name", self.node_name, "--transport-port", str(self.transport_port)),
            *("--seed-hosts", ",".join(f"127.0.0.1:{port}" for port in self.seed_ports)),
            *("--initial-cluster-managers", ",".join(self.managers)),
        ]


class NodeStatus(BaseModel):
    """Whether the local node runs, and where; ``version`` is None while it is starting.

    ``name`` is a cluster member's node name, None for the single node.
    """

    running: bool
    kind: str
    url: str | None
    pid: int | None
    version: str | None
    data_dir: Path
    log_file: Path
    name: str | None = None


class _State(BaseModel):
    pid: int
    port: int
    url: str


class _Ready(BaseModel):
    url: str
    pid: int
    engine: str
    version: str


class LocalNode:
    """One local node per cache directory and engine kind, shared by every process.

    ``root`` and ``discovery`` make it a member of a local cluster (``LocalCluster`` sets both): the folder it owns
    instead of ``<cache_dir>/<kind>/`` (named as the node), and how it finds the other members. A member without
    ``discovery`` can be reported and stopped, not started.
    """

    def __init__(
        self,
        cache_dir: Path,
        *,
        kind: Literal["opensearch", "elasticsearch"] = "opensearch",
        heap: str = "1g",
        root: Path | None = None,
        discovery: Discovery | None = None,
    ) -> None:
        if kind not in ("opensearch", "elasticsearch"):
            raise ConfigError(f"unknown engine kind {kind!r}: use opensearch or elasticsearch")
        if not re.fullmatch(r"[1-9][0-9]*[kKmMgG]?", heap):
            raise ConfigError(f"heap size {heap!r} is not a JVM size such as 512m or 1g")
        self.kind = kind
        self.heap = heap
        self.cache_dir = Path(cache_dir).expanduser()
        self.discovery = discovery
        self.name = discovery.node_name if discovery else (Path(root).name if root is not None else None)
        """A cluster member's node name (its folder's), None for the single node."""
        self._root = Path(root).expanduser() if root is not None else self.cache_dir / kind
        self._startable = root is None or discovery is not None
        self._state_file = self._root / "node.json"
        self._ready_file = self._root / "ready.json"
        self._log_file = self._root / "node.log"
        self._lock = FileLock(self._root / "start.lock")
        self._process: subprocess.Popen[bytes] | None = None  # a node started here, reaped by this process

    @property
    def data_dir(self) -> Path:
        return self._root / "data"

    @property
    def log_file(self) -> Path:
        return self._log_file

    # -- public API ---------------------------------------------------------

    def status(self) -> NodeStatus:
        """Read the state file and check that its process is still this node; changes nothing."""
        state = self._read_state()
        if state is None or not self._alive(state.pid):
            return self._status(running=False)
        ready = self._read_ready(state.pid)
        return self._status(running=True, url=state.url, pid=state.pid, version=ready.version if ready else None)

    def start(
        self, *, port: int | None = None, timeout: float = 180, progress: Progress | None = None, attached: bool = False
    ) -> NodeStatus:
        """Start the node and wait until it answers; refuse if it already runs.

        ``attached=True`` ties the node to this process: it stops when this process exits,
        however that happens (a test session, say). By default it outlives the caller.
        """
        return self.wait_ready(self.launch(port=port, progress=progress, attached=attached), timeout=timeout)

    def launch(self, *, port: int | None = None, progress: Progress | None = None, attached: bool = False) -> int:
        """Start the node's JVM without waiting for it to answer, and return its pid (``start`` = this + ``wait_ready``).

        The members of a new cluster are launched together: none is ready before enough of them have met.
        """
        say = progress or _quiet
        self._launcher()
        self._make_root()
        with self._lock:
            current = self.status()
            if current.running:
                raise LocalNodeError(
                    f"the local {self._what} is already running at {current.url} (pid {current.pid}); "
                    "stop it first with `ssi-plugin engine stop`"
                )
            if port is not None:
                _claim_port(port)  # a wrong or taken port fails before any build
            return self._spawn(port=port, attached=attached, say=say)

    def wait_ready(self, pid: int, *, timeout: float = 180) -> NodeStatus:
        """Wait until the JVM ``pid`` that ``launch`` returned answers; a ``LocalNodeError`` if it exits or takes too long."""
        return self._await_ready(pid, deadline=time.monotonic() + timeout)

    def ensure_running(self, progress: Progress | None = None) -> NodeStatus:
        """The node's status once it serves requests, starting it (or waiting for a start in progress) as needed."""
        say = progress or _quiet
        current = self.status()
        if current.running and current.version:
            return current
        self._launcher()
        self._make_root()
        with self._lock:
            current = self.status()
            if current.running and current.pid is not None:  # ready, or started by a process that left before it was
                return current if current.version else self.wait_ready(current.pid)
            return self.wait_ready(self._spawn(port=None, attached=False, say=say))

    def prepare(self, progress: Progress | None = None) -> None:
        """Do now what the first start would: check java, build the launcher, record its class-data archive."""
        self._prepared(progress or _quiet)

    def stop(self, *, timeout: float = 30) -> NodeStatus:
        """Ask the node to close (SIGTERM), wait for it, and kill it if it does not exit in time."""
        state = self._read_state()
        if state is None or not self._alive(state.pid):
            self._forget()
            raise LocalNodeError(f"no local {self._what} is running (data in {self.data_dir}); nothing to stop")
        _signal(state.pid, signal.SIGTERM)
        if not self._wait_exit(state.pid, timeout):
            _signal(state.pid, signal.SIGKILL)
            self._wait_exit(state.pid, 10)
        self._forget()
        return self._status(running=False, pid=state.pid)

    # -- starting ------------------------------------------------------------

    @property
    def _what(self) -> str:
        """How messages name this node."""
        return f"{self.kind} node" if self.name is None else f"{self.kind} cluster node {self.name}"

    def _launcher(self) -> _Launcher:
        launcher = _LAUNCHERS.get(self.kind)
        if launcher is None:
            raise LocalNodeError(
                f"this version of ssi-plugin has no local {self.kind} node; "
                f"point --url at a {self.kind} cluster (docker-compose.yml starts one)"
            )
        return launcher

    def _prepared(self, say: Progress) -> tuple[Path, Path, Path | None]:
        """The java, the launcher build and its class-data archive (None if the JVM cannot make one)."""
        launcher = self._launcher()
        java = find_java(launcher)
        build = build_launcher(launcher, java=java, build_root=self._build_root(), progress=say)
        return java, build, self._class_archive(java, build, say)

    def _class_archive(self, java: Path, build: Path, say: Progress) -> Path | None:
        """A dynamic CDS archive of the classes a start loads: it halves later start-up times.

        Recorded once per launcher build and JVM by a throwaway node, since the JVM writes it on exit.
        """
        jvm = hashlib.sha256(f"{java} {_java_banner(java)}".encode()).hexdigest()[:12]
        archive = build / f"classes-{jvm}.jsa"
        unusable = archive.with_suffix(".unusable")
        with FileLock(archive.with_suffix(".lock")):
            if not archive.is_file() and not unusable.exists():
                say("recording a class-data archive so later starts are faster (first use only) ...")
                recording = archive.with_suffix(".partial")
                recording.unlink(missing_ok=True)
                with tempfile.TemporaryDirectory(prefix="ssi-node-") as tmp:
                    trainer = LocalNode(Path(tmp), kind=self.kind, heap=self.heap)
                    trainer._make_root()
                    try:
                        pid = trainer._spawn(port=None, attached=True, say=_quiet, record=(java, build, recording))
                        trainer.wait_ready(pid, timeout=300)
                    except LocalNodeError as exc:  # the real start that follows reports it, with a log that is kept
                        say(f"no class-data archive: {exc}")
                        return None
                    trainer.stop(timeout=120)
                if recording.is_file():
                    recording.replace(archive)
                else:
                    unusable.touch()
        return archive if archive.is_file() else None

    def _spawn(self, *, port: int | None, attached: bool, say: Progress, record: tuple[Path, Path, Path] | None = None) -> int:
        """Launch the JVM and return its pid; ``record`` = (java, build, archive) records a class-data archive."""
        launcher = self._launcher()
        if not self._startable:
            raise LocalNodeError(f"the local {self._what} in {self._root} has no cluster to join: start its cluster")
        if record is None:
            java, build, archive = self._prepared(say)
            class_data = [f"-XX:SharedArchiveFile={archive}"] if archive else []
        else:
            java, build, recording = record
            class_data = [f"-XX:ArchiveClassesAtExit={recording}"]
        home = self._fresh_home(say)
        logs = self._root / "logs"
        self._check_data_dir()
        logs.mkdir(exist_ok=True)
        port = _claim_port(port)
        self._forget()
        command = [
            str(java),
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            *_JVM_OPTIONS,
            *launcher.jvm_options,
            *class_data,
            "-cp",
            os.pathsep.join([str(build / "launcher.jar"), str(build / "lib" / "*")]),
            launcher.main_class,
            *("--home", str(home), "--data", str(self.data_dir), "--logs", str(logs)),
            *("--port", str(port), "--ready-file", str(self._ready_file)),
            *(("--parent-pid", str(os.getpid())) if attached else ()),
            *(self.discovery.launcher_arguments() if self.discovery else ()),
        ]
        with self._log_file.open("wb") as log:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=self._root, start_new_session=True
            )
        self._process = process
        state = _State(pid=process.pid, port=port, url=f"http://127.0.0.1:{port}")
        _write_atomic(self._state_file, state.model_dump_json())
        say(f"waiting for {self._what} on port {port} (pid {process.pid}, log {self._log_file}) ...")
        return process.pid

    def _await_ready(self, pid: int, *, deadline: float) -> NodeStatus:
        while True:
            ready = self._read_ready(pid)
            if ready is not None:
                return self._status(running=True, url=ready.url, pid=pid, version=ready.version)
            if not self._alive(pid):
                self._forget()
                raise LocalNodeError(f"the local {self._what} did not start: {self._failure_line()} (log: {self._log_file})")
            if time.monotonic() > deadline:
                _signal(pid, signal.SIGKILL)
                self._wait_exit(pid, 10)
                self._forget()
                raise LocalNodeError(f"the local {self._what} was not ready in time and was stopped; see {self._log_file}")
            time.sleep(0.2)

    def _failure_line(self) -> str:
        """The launcher's one-line reason, else the last line the JVM wrote."""
        try:
            lines = [line.strip() for line in self._log_file.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log was written"
        reasons = [line.removeprefix("ssi-launcher:").strip() for line in lines if line.startswith("ssi-launcher:")]
        reason = reasons[-1] if reasons else (lines[-1] if lines else "the JVM exited without output")
        if "locked by another running node" in reason:
            reason += f"; stop that process (`pgrep -af {self._launcher().main_class}` lists it)"
        return reason

    # -- the cache directory ---------------------------------------------------

    def _build_root(self) -> Path:
        return Path(os.environ.get(LAUNCHER_CACHE_ENV) or self.cache_dir / "launchers").expanduser()

    def _make_root(self) -> None:
        make_folder(self._root, f"the local {self._what}")

    def _fresh_home(self, say: Progress) -> Path:
        """``path.home`` holds only empty modules/, plugins/ and config/ (modules load from the classpath), so it is rebuilt each start."""
        home = self._root / "home"
        stray = [entry for sub in ("modules", "plugins") if (home / sub).is_dir() for entry in (home / sub).iterdir()]
        if stray:
            say(f"removing unexpected entries from {home}: {', '.join(p.name for p in stray)}")
        if home.is_dir() and not home.is_symlink():
            shutil.rmtree(home)
        elif home.exists() or home.is_symlink():
            home.unlink()
        for sub in ("modules", "plugins", "config"):
            (home / sub).mkdir(parents=True)
        return home

    def _check_data_dir(self) -> None:
        data = self.data_dir
        if data.exists() and not data.is_dir():
            raise LocalNodeError(f"the data directory {data} is a file, not a folder: move or delete it")
        data.mkdir(exist_ok=True)
        if not os.access(data, os.W_OK | os.X_OK):
            raise LocalNodeError(f"the data directory {data} is not writable")

    def _read_state(self) -> _State | None:
        """None when there is no usable state; an unreadable file is ignored (and replaced by the next start)."""
        try:
            return _State.model_validate_json(self._state_file.read_bytes())
        except (OSError, ValidationError):
            return None

    def _read_ready(self, pid: int) -> _Ready | None:
        try:
            ready = _Ready.model_validate_json(self._ready_file.read_bytes())
        except (OSError, ValidationError):
            return None
        return ready if ready.pid == pid else None

    def _forget(self) -> None:
        for path in (self._state_file, self._ready_file):
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                path.unlink()

    # -- processes ---------------------------------------------------------------

    def _alive(self, pid: int) -> bool:
        """True while ``pid`` is this node's JVM (not an exited child, not a reused pid)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child that has exited
                return False
        except ChildProcessError:
            pass
        cmdline = Path(f"/proc/{pid}/cmdline")
        if cmdline.parent.is_dir():
            try:
                args = cmdline.read_bytes()
                if not args:  # a zombie, or a child still inside exec: the spawner resumes before the kernel sets cmdline
                    return (cmdline.parent / "stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
            except (OSError, IndexError):
                return False
            return self._launcher_marker() in args and str(self.data_dir).encode() in args
        return True

    def _launcher_marker(self) -> bytes:
        launcher = _LAUNCHERS.get(self.kind)
        return (launcher.main_class if launcher else "org.ssiplugin.launcher.").encode()

    def _wait_exit(self, pid: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def _status(self, *, running: bool, url: str | None = None, pid: int | None = None, version: str | None = None) -> NodeStatus:
        return NodeStatus(
            running=running, kind=self.kind, url=url, pid=pid, version=version, data_dir=self.data_dir, log_file=self._log_file,
            name=self.name,
        )


# -- prerequisites and the launcher build ------------------------------------------


def find_java(launcher: _Launcher) -> Path:
    """A ``java`` whose version the launcher supports: JAVA_HOME, then PATH, then the usual JVM folders."""
    low, high = launcher.java
    seen: list[str] = []
    for java in _java_candidates():
        version = _java_version(java)
        if version is not None and low <= version <= high:
            return java
        seen.append(f"java {version or '?'} at {java}")
    found = f" (found {', '.join(seen)})" if seen else ""
    raise PrerequisiteMissing(
        f"java {low} to {high} is needed by the local {launcher.project} node and was not found{found}: "
        f"install it with `{launcher.jdk_hint}` or set JAVA_HOME"
    )


def _java_candidates() -> Iterator[Path]:
    seen: set[Path] = set()
    java_home = os.environ.get("JAVA_HOME")
    on_path = shutil.which("java")
    candidates = [Path(java_home) / "bin" / "java"] if java_home else []
    candidates += [Path(on_path)] if on_path else []
    candidates += [java for root in _JVM_ROOTS if root.is_dir() for java in sorted(root.glob("*/bin/java"))]
    candidates += [java for root in _JVM_ROOTS if root.is_dir() for java in sorted(root.glob("*/Contents/Home/bin/java"))]
    for java in candidates:
        real = java.resolve()
        if real not in seen and real.is_file():
            seen.add(real)
            yield real


@cache
def _java_banner(java: Path) -> str:
    """What ``java -version`` prints: the exact JVM build, empty if it does not run."""
    try:
        return subprocess.run([str(java), "-version"], check=False, capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError):
        return ""


def _java_version(java: Path) -> int | None:
    match = re.search(r'version "(\d+)(?:\.(\d+))?', _java_banner(java))
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def _project_dir(launcher: _Launcher) -> Path:
    """The launcher's Maven project, in a source checkout (``integration/``) or an installed wheel (``ssi_plugin/_integration``)."""
    integration = project_dir("integration")
    project = integration / launcher.project
    for needed in (project / "pom.xml", integration / _SHARED_SOURCES):
        if not needed.exists():
            raise LocalNodeError(
                f"the launcher sources integration/{needed.relative_to(integration).as_posix()} are missing from this installation; "
                "reinstall ssi-plugin"
            )
    return project


def _source_hash(project: Path) -> str:
    """A hash of all the launcher's build reads: its project and the shared sources beside it (never a build's target/)."""
    integration = project.parent
    digest = hashlib.sha256()
    for folder in (project, integration / _SHARED_SOURCES):
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and "target" not in p.relative_to(folder).parts):
            digest.update(path.relative_to(integration).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_launcher(launcher: _Launcher, *, java: Path, build_root: Path, progress: Progress | None = None) -> Path:
    """The launcher's build folder (launcher.jar, lib/), built with Maven when its sources changed or the build is damaged."""
    say = progress or _quiet
    project = _project_dir(launcher)
    build = build_root / f"{launcher.project}-{_source_hash(project)}"
    try:
        build_root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalNodeError(f"cannot use {build_root} for launcher builds: {exc.strerror}; move or delete what is in the way") from None
    with FileLock(build_root / f"{launcher.project}.lock"):
        if not _is_built(build):
            _maven_build(launcher, project, build, java=java, say=say)
    return build


def _is_built(build: Path) -> bool:
    return (build / "launcher.jar").is_file() and any((build / "lib").glob("*.jar"))


def _maven_build(launcher: _Launcher, project: Path, build: Path, *, java: Path, say: Progress) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PrerequisiteMissing(
            "mvn (Apache Maven) is needed once to build the local node's launcher and was not found: "
            "install it with `apt-get install maven`"
        )
    if not (java.parent / "javac").is_file():
        raise PrerequisiteMissing(
            f"javac is needed to build the local node's launcher, but {java} is a JRE without it: "
            f"install a JDK with `{launcher.jdk_hint}`"
        )
    staging = build.with_name(f".{build.name}.partial")
    log = build.with_name(f"{build.name}.maven.log")
    for path in (staging, build):
        shutil.rmtree(path, ignore_errors=True)
    say(f"building the {launcher.project} launcher with Maven (first use downloads about 100 MB into the Maven repository) ...")
    started = time.monotonic()
    command = [mvn, "-B", "-ntp", "-Dstyle.color=never", "-f", str(project / "pom.xml"), f"-Dlauncher.build.dir={staging}", "package"]
    env = {**os.environ, "JAVA_HOME": str(java.parent.parent)}
    with log.open("wb") as out:
        result = subprocess.run(command, check=False, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0 or not _is_built(staging):
        shutil.rmtree(staging, ignore_errors=True)
        raise LocalNodeError(
            f"building the {launcher.project} launcher with Maven failed (exit {result.returncode}; "
            f"full output in {log}):\n{_maven_errors(log)}"
        )
    staging.rename(build)
    say(f"launcher built in {time.monotonic() - started:.0f} s")


_MAVEN_BOILERPLATE = re.compile(r"^\[ERROR\]\s*($|->|To see the full|Re-run Maven|For more information|\[Help \d)")


def _maven_errors(log: Path) -> str:
    """Maven's own error lines without its generic advice, else the end of its output."""
    lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = list(dict.fromkeys(line for line in lines if line.startswith("[ERROR]") and not _MAVEN_BOILERPLATE.match(line)))
    return "\n".join(errors[:8] if errors else lines[-12:])


# -- small helpers ----------------------------------------------------------------------


def _quiet(_: str) -> None:
    pass


def _claim_port(port: int | None) -> int:
    """The requested port if it is free on 127.0.0.1, else a free one when none was requested."""
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"port {port} is not a TCP port (1-65535)")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the JVM binds: TIME_WAIT does not count as taken
        try:
            sock.bind(("127.0.0.1", port or 0))
        except OSError:
            raise LocalNodeError(
                f"port {port} on 127.0.0.1 is already in use: choose another with --port, or leave it unset to take a free one"
            ) from None
        return sock.getsockname()[1]


def make_folder(folder: Path, purpose: str) -> None:
    """Create ``folder`` (and its parents), or say what is in the way of using it for ``purpose``."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LocalNodeError(f"cannot use {folder} for {purpose}: {exc.strerror}; move or delete what is in the way") from None


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
