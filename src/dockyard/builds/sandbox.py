"""Per-build resource limits and process containment for the buildah executor.

A build's process tree is confined by the best mechanism the host offers, chosen once per build and named in the
build's log:

* ``cgroup2`` — a cgroup of its own under ``<cgroup v2 mount>/<parent>/`` with ``memory.max``, ``pids.max`` (and
  ``memory.swap.max`` = 0); CPU time is read from ``cpu.stat`` and the executor stops the build past its budget.
  Needs a cgroup v2 mount whose ``cgroup.controllers`` lists ``memory`` and ``pids`` and that root may write.
* ``cgroup1`` — one cgroup per v1 hierarchy (``memory``, ``pids``, ``cpuacct``) under ``<hierarchy>/<parent>/``:
  ``memory.limit_in_bytes`` (and ``memory.memsw.limit_in_bytes``), ``pids.max``, CPU time from ``cpuacct.usage``.
* ``rlimits`` — neither is writable: ``RLIMIT_CPU`` (per process), ``RLIMIT_NPROC`` (only binds non-root users)
  and ``RLIMIT_FSIZE``; memory is then **not** limited, and the log says so.

In every mode ``RLIMIT_FSIZE`` caps a single file at the disk limit, and the executor itself enforces wall time
and the disk limit (it watches the build's directories) — see ``dockyard.builds.buildah``. Process containment
does not depend on cgroups: the build runs as PID 1 of a PID namespace of its own (``unshare --pid --fork
--kill-child``), so killing it takes every process it started with it.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dockyard.builds.executor import BuildLimits

Mode = Literal["cgroup2", "cgroup1", "rlimits"]
_V1_CONTROLLERS = ("memory", "pids", "cpuacct")


def _write(path: Path, value: str) -> None:
    path.write_text(value)


def _read_keyed(path: Path, key: str) -> int:
    """The value of ``key`` in a ``key value`` per line cgroup file (``pids.events``, ``memory.events``)."""
    try:
        for line in path.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def cgroup_mounts(mounts_file: Path = Path("/proc/self/mounts")) -> tuple[Path | None, dict[str, Path]]:
    """The cgroup v2 mount point (or None) and the v1 hierarchies' mount points by controller name."""
    v2: Path | None = None
    v1: dict[str, Path] = {}
    try:
        lines = mounts_file.read_text().splitlines()
    except OSError:
        return None, {}
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        mount_point, fstype, options = Path(parts[1]), parts[2], parts[3].split(",")
        if fstype == "cgroup2" and v2 is None:
            v2 = mount_point
        elif fstype == "cgroup":
            for controller in _V1_CONTROLLERS:
                if controller in options:
                    v1.setdefault(controller, mount_point)
    return v2, v1


def tree_bytes(root: Path) -> int:
    """Disk blocks used under ``root`` (not following symlinks), in bytes."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    total += st.st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
        except OSError:
            continue
    return total


@dataclass
class Confinement:
    """The limits one build runs under: how to start a process inside them, what they have observed, and how
    to kill everything inside and remove them."""

    mode: Mode
    limits: BuildLimits
    cgroups: dict[str, Path] = field(default_factory=dict)  # controller ("v2" for the unified one) -> directory
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One log line saying how each limit is enforced."""
        lim = self.limits
        parts = [f"sandbox: {self.mode}"]
        if self.mode == "rlimits":
            parts.append("memory not limited (no writable cgroup)" if lim.memory_bytes else "memory unlimited")
            parts.append(
                f"pids RLIMIT_NPROC={lim.pids} (not binding for root)" if lim.pids is not None else "pids unlimited"
            )
            parts.append(f"cpu RLIMIT_CPU={int(lim.cpu_seconds)}s per process" if lim.cpu_seconds else "cpu unlimited")
        else:
            parts.append(f"memory {lim.memory_bytes} bytes" if lim.memory_bytes else "memory unlimited")
            parts.append(f"pids {lim.pids}" if lim.pids is not None else "pids unlimited")
            parts.append(f"cpu {lim.cpu_seconds:g}s in total" if lim.cpu_seconds else "cpu unlimited")
        parts.append(f"disk {lim.disk_bytes} bytes (watched)" if lim.disk_bytes else "disk unlimited")
        parts.append(f"wall {lim.wall_seconds:g}s")
        return "; ".join(parts + self.notes)

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started inside the limits: a shell joins the cgroups (``0`` = itself), then ``prlimit``
        sets the rlimits and execs the command, which inherits both."""
        lim = self.limits
        rlimits: list[str] = []
        if lim.disk_bytes:
            rlimits.append(f"--fsize={lim.disk_bytes}")
        if self.mode == "rlimits":
            if lim.cpu_seconds:
                rlimits.append(f"--cpu={max(1, int(lim.cpu_seconds))}")
            if lim.pids is not None:
                rlimits.append(f"--nproc={lim.pids}")
        command = ["prlimit", *rlimits, "--", *argv] if rlimits else argv
        if not self.cgroups:
            return command
        joins = " && ".join(f"echo 0 > {shlex.quote(str(d / 'cgroup.procs'))}" for d in self.cgroups.values())
        return ["/bin/sh", "-c", f'{joins} || exit 125; exec "$@"', "sandbox", *command]

    def cpu_seconds_used(self) -> float:
        """CPU time the build's processes have used so far (cgroup modes; 0 under rlimits)."""
        try:
            if "v2" in self.cgroups:
                return _read_keyed(self.cgroups["v2"] / "cpu.stat", "usage_usec") / 1e6
            if "cpuacct" in self.cgroups:
                return int((self.cgroups["cpuacct"] / "cpuacct.usage").read_text()) / 1e9
        except (OSError, ValueError):
            pass
        return 0.0

    def pids_refused(self) -> int:
        """How many forks the pids limit has refused."""
        directory = self.cgroups.get("v2") or self.cgroups.get("pids")
        return _read_keyed(directory / "pids.events", "max") if directory else 0

    def oom_kills(self) -> int:
        """How many processes the memory limit's OOM killer has killed (0 where the kernel does not say)."""
        if "v2" in self.cgroups:
            return _read_keyed(self.cgroups["v2"] / "memory.events", "oom_kill")
        if "memory" in self.cgroups:
            return _read_keyed(self.cgroups["memory"] / "memory.oom_control", "oom_kill")
        return 0

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self.cgroups.values():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return found

    def kill_all(self, timeout: float = 10.0) -> bool:
        """SIGKILL every process in the build's cgroups until none is left; True when empty."""
        if not self.cgroups:
            return True
        if "v2" in self.cgroups and (self.cgroups["v2"] / "cgroup.kill").exists():
            with contextlib.suppress(OSError):
                _write(self.cgroups["v2"] / "cgroup.kill", "1")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            left = self.pids()
            if not left:
                return True
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        return not self.pids()

    def remove(self) -> None:
        """Kill what is left and remove the cgroups (a cgroup is removed with rmdir once empty)."""
        self.kill_all()
        for directory in self.cgroups.values():
            for _ in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)


class Sandbox:
    """Chooses and creates the confinement of each build. ``parent`` names the cgroup every build's cgroup is
    made under; ``mode`` forces one (``"auto"``: cgroup v2, else v1, else rlimits)."""

    def __init__(
        self,
        parent: str = "dockyard-builds",
        mode: Literal["auto", "cgroup2", "cgroup1", "rlimits"] = "auto",
        mounts_file: Path = Path("/proc/self/mounts"),
    ) -> None:
        self.parent = parent
        self.mode = mode
        self.mounts_file = mounts_file

    def confine(self, build_name: str, limits: BuildLimits) -> Confinement:
        """Create the build's cgroups (if the host lets us) and return its confinement. Never raises for a host
        without cgroups: it falls back to rlimits and records why."""
        v2, v1 = cgroup_mounts(self.mounts_file)
        notes: list[str] = []
        if self.mode in ("auto", "cgroup2") and v2 is not None:
            try:
                return Confinement("cgroup2", limits, {"v2": self._make_v2(v2, build_name, limits)})
            except OSError as exc:
                notes.append(f"cgroup v2 not usable ({exc.strerror or exc})")
        if self.mode in ("auto", "cgroup1") and all(c in v1 for c in _V1_CONTROLLERS):
            made: dict[str, Path] = {}
            try:
                for controller in _V1_CONTROLLERS:
                    made[controller] = self._make_v1(v1[controller], controller, build_name, limits)
                return Confinement("cgroup1", limits, made, notes)
            except OSError as exc:
                Confinement("cgroup1", limits, made).remove()
                notes.append(f"cgroup v1 not usable ({exc.strerror or exc})")
        return Confinement("rlimits", limits, {}, notes)

    def _make_v2(self, mount: Path, build_name: str, limits: BuildLimits) -> Path:
        available = set((mount / "cgroup.controllers").read_text().split())
        if not {"memory", "pids"} <= available:
            raise OSError(
                0, f"controllers memory and pids not available (have: {' '.join(sorted(available)) or 'none'})"
            )
        wanted = " ".join(f"+{c}" for c in ("memory", "pids", "cpu") if c in available)
        _write(mount / "cgroup.subtree_control", wanted)
        parent = mount / self.parent
        parent.mkdir(exist_ok=True)
        _write(parent / "cgroup.subtree_control", wanted)
        directory = parent / build_name
        directory.mkdir()
        try:
            if limits.memory_bytes is not None:
                _write(directory / "memory.max", str(limits.memory_bytes))
                with contextlib.suppress(OSError):
                    _write(directory / "memory.swap.max", "0")
            if limits.pids is not None:
                _write(directory / "pids.max", str(limits.pids))
        except OSError:
            directory.rmdir()
            raise
        return directory

    def _make_v1(self, mount: Path, controller: str, build_name: str, limits: BuildLimits) -> Path:
        parent = mount / self.parent
        parent.mkdir(exist_ok=True)
        directory = parent / build_name
        directory.mkdir()
        if controller == "memory" and limits.memory_bytes is not None:
            _write(directory / "memory.limit_in_bytes", str(limits.memory_bytes))
            with contextlib.suppress(OSError):  # absent when the kernel does not account swap
                _write(directory / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
        if controller == "pids" and limits.pids is not None:
            _write(directory / "pids.max", str(limits.pids))
        return directory
