"""The two servers under test, each started fresh on a free loopback port, and what /proc says about them."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench.http import HTTPError, SyncConnection

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name: state is field 3; utime and stime are fields 14 and 15 (1-based, man proc).
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


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
