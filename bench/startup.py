"""The start-up section (``python -m bench.run --config startup``): how soon each server answers ``/v2/`` after it is
started on an already-initialised data directory, the CPU it spent getting there, and what its whole process tree
holds in memory once idle — Dockyard with default settings (one worker per core) and the reference.

Each server is started once on a fresh directory (Dockyard migrates and creates its first-start key and
administrator; not timed) and stopped, then started ``rounds`` times more on that directory: the clock runs from
just before the exec to the first 200 on ``/v2/`` (polled every 10 ms, a new connection each), and the tree is
read from ``/proc`` once it stops growing.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.http import HTTPError, SyncConnection
from bench.servers import Server, _cpu_seconds, _status_kib
from bench.workload import Results, log

POLL_SECONDS = 0.01
STARTUP_METHOD = [
    "Each server starts once on a fresh data directory (not timed), then the measured starts on that directory; "
    "medians. Start: from just before the exec to the first 200 on /v2/ (polled every 10 ms). CPU: utime+stime "
    "of the tree at that moment, with the children it has reaped. Memory: /proc once the tree stops growing; "
    "RSS counts a page shared by two processes twice, PSS shares it out. `dockyard serve` prepares (migrations, "
    "first start) and then execs into its supervisor: VmHWM restarts at the exec, so the peak of the preparation, "
    "which ends before any worker starts, is not in the summed peak.",
    "Dockyard runs with default settings (one worker per core, --open); the reference with its filesystem driver.",
]


@dataclass
class Measure:
    key: str
    label: str
    decimals: int


MEASURES = [
    Measure("start", "start until /v2/ answers, on an initialised data directory (s ↓)", 2),
    Measure("start_cpu", "CPU-s the server's processes used until then (↓)", 2),
    Measure("idle_rss", "idle RSS of the whole process tree, VmRSS summed (MiB ↓)", 0),
    Measure("idle_pss", "idle PSS of the whole process tree: shared pages counted once (MiB ↓)", 0),
    Measure("start_hwm", "peak RSS during the start, VmHWM summed over the tree (MiB ↓)", 0),
    Measure("processes", "processes in the tree (↓)", 0),
]


@dataclass
class StartRound:
    seconds: float
    cpu: float
    rss: float
    pss: float
    hwm: float
    per_process: list[tuple[str, float]] = field(default_factory=list)


def _pss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _command_name(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [word.decode(errors="replace") for word in argv if word]
    # `python -m dockyard.cli.supervisor …` → dockyard.cli.supervisor; `docker-registry serve …` → docker-registry
    if "-m" in words[:-1]:
        return words[words.index("-m") + 1]
    return Path(words[0]).name if words else "?"


def _answers(server: Server) -> bool:
    try:
        with SyncConnection(server.host, server.port, timeout=2) as conn:
            return conn.request("GET", "/v2/").status == 200
    except (OSError, HTTPError):
        return False


def start_once(server: Server, timeout: float = 120.0) -> StartRound:
    """Start ``server`` (already initialised), time it to its first ``/v2/`` answer, read its idle tree, stop it."""
    with server.log_path.open("ab") as output:
        clock = time.perf_counter()
        server.process = subprocess.Popen(
            server.command(),
            env=server.environment(),
            stdout=output,
            stderr=subprocess.STDOUT,
            cwd=server.workdir,
            start_new_session=True,
        )
    try:
        deadline = clock + timeout
        while not _answers(server):
            if server.process.poll() is not None:
                raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{server.name} did not answer /v2/ within {timeout} s:\n{server.log_tail()}")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - clock
        # Processes that ran and exited during the start (a preparation step) count through their parent.
        cpu = sum(_cpu_seconds(pid) for pid in server.pids()) + (
            _cpu_seconds(server.pid, reaped=True) - _cpu_seconds(server.pid)
        )
        server._settle()
        pids = server.pids()
        per_process = [(_command_name(pid), _status_kib(pid, "VmRSS") / 1024) for pid in pids]
        return StartRound(
            seconds=seconds,
            cpu=cpu,
            rss=sum(rss for _, rss in per_process),
            pss=sum(_pss_kib(pid) for pid in pids) / 1024,
            hwm=sum(_status_kib(pid, "VmHWM") for pid in pids) / 1024,
            per_process=per_process,
        )
    finally:
        server.stop()


def run_startup(server: Server, rounds: int) -> Results:
    """The first start (initialises the data directory), then ``rounds`` measured ones; medians in the values."""
    results = Results(server.name)
    try:
        results.version = server.version()
        log(f"{server.name}: first start on a fresh data directory")
        server.start()
        server.stop()
        measured = []
        for number in range(rounds):
            measured.append(start_once(server))
            log(f"{server.name}: start {number + 1}/{rounds}: {measured[-1].seconds:.2f} s")
    except Exception as exc:
        server.stop()
        results.errors.append(f"start-up section: {exc}")
        return results
    results.values = {
        "start": statistics.median(r.seconds for r in measured),
        "start_cpu": statistics.median(r.cpu for r in measured),
        "idle_rss": statistics.median(r.rss for r in measured),
        "idle_pss": statistics.median(r.pss for r in measured),
        "start_hwm": statistics.median(r.hwm for r in measured),
        "processes": statistics.median(len(r.per_process) for r in measured),
    }
    last = measured[-1]
    tree = ", ".join(f"{name} {rss:.0f}" for name, rss in last.per_process)
    results.notes.append(f"idle RSS per process (MiB), last start: {tree}")
    results.notes.append("start times (s): " + ", ".join(f"{r.seconds:.2f}" for r in measured))
    return results


def startup_rows(dockyard: Results | None, reference: Results | None) -> list[tuple[str, str, str, str]]:
    def cell(results: Results | None, measure: Measure) -> str:
        value = results.values.get(measure.key) if results else None
        return "—" if value is None else f"{value:,.{measure.decimals}f}"

    out = []
    for measure in MEASURES:
        d = dockyard.values.get(measure.key) if dockyard else None
        r = reference.values.get(measure.key) if reference else None
        ratio = f"{r / d:.2f}×" if d and r is not None else "—"  # every measure here: lower is better
        out.append((measure.label, cell(dockyard, measure), cell(reference, measure), ratio))
    return out
