"""What every benchmark section shares: running one server through a workload while watching the machine's
CPU, and the facts about the machine and the code that go under each table."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from bench.data import BigData, SmallImage
from bench.servers import Server
from bench.workload import Params, Results, Workload, log

REPO_ROOT = Path(__file__).resolve().parents[1]


def _first_line(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else "unknown"


def machine_facts() -> list[str]:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return [
        f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, Linux {platform.release()}, "
        f"Python {platform.python_version()}",
        f"wrk: {_first_line(['wrk', '--version'])}",
    ]


def source_revision() -> str:
    """The commit the benchmarked code is at, and whether the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head}{' with uncommitted changes under src/' if dirty else ''}"


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def _machine_busy_seconds() -> float:
    """CPU seconds all processes and kernel threads have spent so far (user, nice, system, steal; not the
    interrupt time, much of which is this benchmark's own loopback traffic), from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    busy = sum(int(fields[i]) for i in (0, 1, 2, 7))
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and its waited-for children (wrk, bench.loadgen)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def run_server(
    server: Server,
    big: BigData,
    images: list[SmallImage],
    params: Params,
    workload: type[Workload] = Workload,
    helpers: dict[str, Callable[[], float]] | None = None,
) -> Results:
    """Start ``server``, run the workload, stop it. ``helpers`` name the CPU-second counters of processes that
    serve the server without being part of it (an S3 server, a balancer): their CPU goes into the notes, apart
    from the machine's other work."""
    helpers = helpers or {}
    log(f"starting {server.name} on port {server.port}")
    server.start()
    busy0, own0, clock0, server0 = _machine_busy_seconds(), _own_seconds(), time.perf_counter(), server.cpu_seconds()
    helper0 = {name: read() for name, read in helpers.items()}
    try:
        results = workload(server, big, images, params, server.workdir).run()
        # Measured before stop(): once waited for, the server's CPU would count among this process's children.
        helper_cpu = {name: read() - helper0[name] for name, read in helpers.items()}
        other = _machine_busy_seconds() - busy0 - (_own_seconds() - own0) - (server.cpu_seconds() - server0)
        other -= sum(helper_cpu.values())
        wall = time.perf_counter() - clock0
    finally:
        server.stop()
        log(f"stopped {server.name}")
    cores = os.cpu_count() or 1
    other = max(other, 0.0)
    for name, cpu in helper_cpu.items():
        results.notes.append(f"{name} used {cpu:.0f} CPU-s during this server's {wall:.0f} s run")
    results.notes.append(
        f"other processes and kernel threads (other work on the machine, disk writeback) used {other:.0f} CPU-s "
        f"during this server's {wall:.0f} s run ({100 * other / (wall * cores):.0f}% of {cores} cores)"
    )
    return results
