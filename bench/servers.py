"""The two servers under test, each started fresh on a free loopback port, and what /proc says about them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.http import HTTPError, SyncConnection
from bench.ports import free_port

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    tree = _children()
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """utime + stime of ``pid``; with ``reaped``, also the CPU of the children it has waited for (cutime +
    cstime), which is where a server's exited worker processes end up."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3; utime and stime are fields 14 and 15, cutime and cstime 16 and 17
    # (1-based, man proc).
    own = int(fields[11]) + int(fields[12])
    children = int(fields[13]) + int(fields[14]) if reaped else 0
    return (own + children) / _CLOCK_TICKS


def _listening_inode(port: int) -> str | None:
    wanted = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as fh:
            next(fh)
            for line in fh:
                parts = line.split()
                if parts[1] == wanted and parts[3] == "0A":
                    return parts[9]
    except OSError:
        return None
    return None


def _owns_socket(pids: list[int], inode: str) -> bool:
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in os.scandir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(fd.path) == target:
                        return True
                except OSError:
                    continue
        except OSError:
            continue
    return False


class Server:
    """A registry in a subprocess: start, stop, and its memory and CPU as /proc reports them."""

    name = "server"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.host = "127.0.0.1"
        self.log_path = workdir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def version(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, timeout: float = 60.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")
            inode = _listening_inode(self.port)
            if inode is not None and _owns_socket(self.pids(), inode):
                try:
                    with SyncConnection(self.host, self.port, timeout=5) as conn:
                        if conn.request("GET", "/v2/").status == 200:
                            self._settle()
                            return
                except (OSError, HTTPError):
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready on port {self.port}:\n{self.log_tail()}")

    def _settle(self, timeout: float = 10.0) -> None:
        """Wait until the process tree stops growing (worker processes still starting up after the first one
        answers), so that the first memory reading is of a server that is fully up."""
        deadline = time.monotonic() + timeout
        last, steady = (-1, -1.0), 0
        while time.monotonic() < deadline and steady < 5:
            now = (len(self.pids()), self.rss_mib())
            steady = steady + 1 if now[0] == last[0] and abs(now[1] - last[1]) < 1.0 else 0
            last = now
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pids(self) -> list[int]:
        return process_tree(self.pid)

    def rss_mib(self) -> float:
        return sum(_status_kib(pid, "VmRSS") for pid in self.pids()) / 1024

    def hwm_mib(self) -> float:
        """Peak resident memory: VmHWM summed over the process and its children (an upper bound)."""
        return sum(_status_kib(pid, "VmHWM") for pid in self.pids()) / 1024

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids())

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class DockyardServer(Server):
    """``dockyard serve`` with default settings over a fresh data directory (one process)."""

    name = "dockyard"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.data_dir = workdir / "data"

    @staticmethod
    def executable() -> str:
        beside = Path(sys.executable).parent / "dockyard"
        if beside.exists():
            return str(beside)
        found = shutil.which("dockyard")
        if found is None:
            raise RuntimeError("the dockyard command is not installed (make venv)")
        return found

    def command(self) -> list[str]:
        return [
            self.executable(),
            "serve",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--open",
        ]

    def environment(self) -> dict[str, str]:
        # Default settings: nothing from the caller's DOCKYARD_* environment leaks in.
        return {k: v for k, v in os.environ.items() if not k.startswith("DOCKYARD_")}

    def version(self) -> str:
        out = subprocess.run([self.executable(), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip() or "dockyard (unknown version)"


REFERENCE_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class ReferenceServer(Server):
    """Debian's ``docker-registry`` (CNCF distribution 2.8) with filesystem storage in a temp directory."""

    name = "reference"

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        self.root = workdir / "storage"
        self.config_path = workdir / "config.yml"

    @staticmethod
    def executable() -> str:
        found = shutil.which("docker-registry")
        if found is None:
            raise RuntimeError("docker-registry is not installed (apt-get install docker-registry)")
        return found

    def command(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(REFERENCE_CONFIG.format(root=self.root, port=self.port))
        return [self.executable(), "serve", str(self.config_path)]

    def environment(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}

    def version(self) -> str:
        out = subprocess.run([self.executable(), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip() or "docker-registry (unknown version)"


# -- scale-out: Dockyard on PostgreSQL + S3, one replica or several behind a balancer; the reference on S3 ------


class ScaleoutReplica(DockyardServer):
    """One ``dockyard serve`` (default settings otherwise) on a shared PostgreSQL database and S3 bucket."""

    def __init__(self, workdir: Path, name: str, settings: dict[str, str]) -> None:
        self.name = name
        super().__init__(workdir)
        self.settings = settings

    def environment(self) -> dict[str, str]:
        # No AWS_* of the caller's (a profile, a CA bundle): the S3 settings and credentials are all in settings.
        inherited = {k: v for k, v in super().environment().items() if not k.startswith("AWS_")}
        return {**inherited, **self.settings}


class ReplicatedDockyard(Server):
    """``replicas`` Dockyard servers over one database and bucket. With more than one, clients reach them through
    ``bench.balancer`` (tests/support/lb.py's per-connection round-robin TCP balancer, in a process of its own).

    Server CPU counts the replicas and, through ``extra_cpu``, the database cluster: Dockyard's metadata
    work happens there, the reference's in the S3 server, which neither side is charged for. Memory counts the
    replicas only."""

    def __init__(
        self,
        workdir: Path,
        name: str,
        replicas: int,
        settings: dict[str, str],
        extra_cpu: Callable[[], float] = float,
    ) -> None:
        self.name = name
        super().__init__(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        self.replicas = []
        for i in range(replicas):
            replica_dir = workdir / f"replica{i + 1}"
            replica_dir.mkdir(exist_ok=True)
            self.replicas.append(ScaleoutReplica(replica_dir, f"{name}-replica{i + 1}", settings))
        self.extra_cpu = extra_cpu
        self.balancer_log = workdir / "balancer.log"
        self.balancer: subprocess.Popen[bytes] | None = None
        if replicas == 1:
            self.port = self.replicas[0].port

    def version(self) -> str:
        return self.replicas[0].version()

    def start(self, timeout: float = 60.0) -> None:
        # All at once, as a deployment rolls out: migrations of the empty database serialize on an advisory lock.
        with ThreadPoolExecutor(len(self.replicas)) as pool:
            starts = [pool.submit(replica.start, timeout) for replica in self.replicas]
        failures = [str(exc) for future in starts if (exc := future.exception()) is not None]
        if failures:
            self.stop()
            raise RuntimeError("\n".join(failures))
        if len(self.replicas) == 1:
            return
        with self.balancer_log.open("ab") as log:
            self.balancer = subprocess.Popen(
                [sys.executable, "-m", "bench.balancer", str(self.port), *(str(r.port) for r in self.replicas)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[1],
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        ready = 0
        while time.monotonic() < deadline and ready < len(self.replicas):
            if self.balancer.poll() is not None:
                raise RuntimeError(f"the balancer exited with {self.balancer.returncode}:\n{self.log_tail()}")
            try:  # one new connection per request: each goes to the next replica
                with SyncConnection(self.host, self.port, timeout=5) as conn:
                    ready = ready + 1 if conn.request("GET", "/v2/").status == 200 else 0
            except (OSError, HTTPError):
                ready = 0
                time.sleep(0.1)
        if ready < len(self.replicas):
            self.stop()
            raise RuntimeError(f"the balancer on port {self.port} did not become ready:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.balancer is not None:
            if self.balancer.poll() is None:
                self.balancer.send_signal(signal.SIGTERM)
                try:
                    self.balancer.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.balancer.kill()
                    self.balancer.wait()
            self.balancer = None
        for replica in self.replicas:
            replica.stop()

    def alive(self) -> bool:
        balanced = len(self.replicas) == 1 or (self.balancer is not None and self.balancer.poll() is None)
        return balanced and all(replica.alive() for replica in self.replicas)

    def pids(self) -> list[int]:
        return [pid for replica in self.replicas if replica.alive() for pid in replica.pids()]

    def cpu_seconds(self) -> float:
        return sum(_cpu_seconds(pid) for pid in self.pids()) + self.extra_cpu()

    def balancer_cpu_seconds(self) -> float:
        if self.balancer is None or self.balancer.poll() is not None:
            return 0.0
        return _cpu_seconds(self.balancer.pid)

    def balancer_report(self) -> str:
        try:
            return self.balancer_log.read_text(errors="replace").strip()
        except OSError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        tails = [f"--- {replica.name}:\n{replica.log_tail(lines)}" for replica in self.replicas]
        if len(self.replicas) > 1:
            tails.append(f"--- balancer:\n{self.balancer_report()[-3000:]}")
        return "\n".join(tails)


REFERENCE_S3_CONFIG = """\
version: 0.1
log:
  level: warn
storage:
  s3:
    region: {region}
    regionendpoint: {endpoint}
    bucket: {bucket}
    accesskey: {access_key}
    secretkey: {secret_key}
    secure: false
    v4auth: true
    rootdirectory: {rootdirectory}
  redirect:
    disable: true
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


class ReferenceS3Server(ReferenceServer):
    """``docker-registry`` with its S3 driver on a bucket of the benchmark's S3 server.

    Distribution 2.8's driver has no ``forcepathstyle`` parameter: it always uses path-style addressing once
    ``regionendpoint`` is set. Blob GETs are served through the registry (``redirect: disable``), as Dockyard's
    are by default, instead of 307 redirects to presigned S3 URLs."""

    def __init__(self, workdir: Path, name: str, s3: dict[str, str]) -> None:
        self.name = name
        super().__init__(workdir)
        self.s3 = s3

    def command(self) -> list[str]:
        self.config_path.write_text(REFERENCE_S3_CONFIG.format(port=self.port, **self.s3))
        return [self.executable(), "serve", str(self.config_path)]

    def environment(self) -> dict[str, str]:
        # The credentials come from the config file. Nothing of the caller's AWS_* may leak in: with AWS_CA_BUNDLE
        # set, 2.8's driver panics at startup (aws-sdk-go's LoadCustomCABundleError: the driver wraps the HTTP
        # transport in a type the SDK cannot add a CA bundle to), although the endpoint is plain HTTP.
        return {k: v for k, v in super().environment().items() if not k.startswith("AWS_")}
