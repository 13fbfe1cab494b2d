"""``python -m bench.run``: Dockyard and the reference registry, one after the other, same workload, one table.

Each server starts fresh (temp data directory, default settings) on a free loopback port, runs every phase of
``bench.workload`` and is stopped before the next one starts. The table goes to stdout and, as Markdown with
the machine facts, to ``bench/results/latest.md``. The exit status is 1 if any measurement failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.data import BigData, SmallImage, make_big_data, make_small_images
from bench.report import METHOD_NOTES, RATIO_NOTE, markdown_table, rows, text_table
from bench.servers import DockyardServer, ReferenceServer, Server
from bench.workload import Params, Results, Workload, log

MiB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest.md"

# Full run (the sizes) and --quick (a smoke run of a few seconds per server).
FULL = {
    "size_mib": 1024,
    "chunk_mib": 16,
    "rounds": 3,
    "small_images": 512,
    "concurrency": 64,
    "wrk_seconds": 10,
    "wrk_connections": 64,
    "range_connections": 16,
    "tags": 5000,
    "repos": 2000,
    "mounts": 1000,
    "list_repeats": 10,
}
QUICK = {
    "size_mib": 16,
    "chunk_mib": 4,
    "rounds": 1,
    "small_images": 16,
    "concurrency": 8,
    "wrk_seconds": 1,
    "wrk_connections": 8,
    "range_connections": 4,
    "tags": 40,
    "repos": 30,
    "mounts": 20,
    "list_repeats": 3,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 s wrk runs: proves the harness works")
    parser.add_argument("--size-mib", type=int, help="big blob size in MiB (1024)")
    parser.add_argument("--chunk-mib", type=int, help="PATCH chunk size for the chunked push in MiB (16)")
    parser.add_argument("--rounds", type=int, help="rounds of the big-blob pushes and pulls; the median is shown (3)")
    parser.add_argument("--small-images", type=int, help="small images to push and pull (512)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients for small images, tags, mounts (64)")
    parser.add_argument("--wrk-seconds", type=int, help="duration of each wrk run (10)")
    parser.add_argument("--wrk-connections", type=int, help="wrk connections for manifest GET/HEAD (64)")
    parser.add_argument("--range-connections", type=int, help="wrk connections for the range reads (16)")
    parser.add_argument("--tags", type=int, help="tags in the tags-list repository (5000)")
    parser.add_argument("--repos", type=int, help="repositories in the catalog (2000)")
    parser.add_argument("--mounts", type=int, help="cross-repo mounts (1000)")
    parser.add_argument("--list-repeats", type=int, help="timed repetitions of each listing; median shown (10)")
    parser.add_argument(
        "--servers", choices=["both", "dockyard", "reference"], default="both", help="which servers to run"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Markdown results file")
    parser.add_argument("--workdir", type=Path, default=None, help="parent directory for temp data (system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (data and server logs)")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.size_mib < 1 or args.chunk_mib < 1 or args.rounds < 1:
        parser.error("--size-mib, --chunk-mib and --rounds must be at least 1")
    return args


def params_from(args: argparse.Namespace) -> Params:
    return Params(
        size=args.size_mib * MiB,
        chunk=args.chunk_mib * MiB,
        rounds=args.rounds,
        small_images=args.small_images,
        concurrency=args.concurrency,
        wrk_duration=args.wrk_seconds,
        wrk_connections=args.wrk_connections,
        range_connections=args.range_connections,
        range_length=min(MiB, args.size_mib * MiB),
        tags=args.tags,
        repos=args.repos,
        mounts=args.mounts,
        list_repeats=args.list_repeats,
    )


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


def run_server(server: Server, big: BigData, images: list[SmallImage], params: Params) -> Results:
    log(f"starting {server.name} on port {server.port}")
    server.start()
    busy0, own0, clock0, server0 = _machine_busy_seconds(), _own_seconds(), time.perf_counter(), server.cpu_seconds()
    try:
        results = Workload(server, big, images, params, server.workdir).run()
        # Measured before stop(): once waited for, the server's CPU would count among this process's children.
        other = _machine_busy_seconds() - busy0 - (_own_seconds() - own0) - (server.cpu_seconds() - server0)
        wall = time.perf_counter() - clock0
    finally:
        server.stop()
        log(f"stopped {server.name}")
    cores = os.cpu_count() or 1
    other = max(other, 0.0)
    results.notes.append(
        f"other processes and kernel threads (other work on the machine, disk writeback) used {other:.0f} CPU-s "
        f"during this server's {wall:.0f} s run ({100 * other / (wall * cores):.0f}% of {cores} cores)"
    )
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    params = params_from(args)
    wanted = ["dockyard", "reference"] if args.servers == "both" else [args.servers]
    missing = [
        tool for tool in ("wrk", *(["docker-registry"] if "reference" in wanted else [])) if not shutil.which(tool)
    ]
    if missing:
        print(f"missing tools: {', '.join(missing)} (make system-deps installs them)", file=sys.stderr)
        return 2

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    clock = time.perf_counter()
    parent = args.workdir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="dockyard-bench-", dir=parent))
    results: dict[str, Results] = {}
    try:
        log(f"test data in {workdir}: {params.size // MiB} MiB x {2 * params.rounds} blobs (one file)")
        big = make_big_data(workdir, params.size, 2 * params.rounds)
        images = make_small_images(params.small_images)
        for name in wanted:
            server_dir = workdir / name
            server_dir.mkdir()
            server: Server = DockyardServer(server_dir) if name == "dockyard" else ReferenceServer(server_dir)
            try:
                results[name] = run_server(server, big, images, params)
            except Exception as exc:
                results[name] = Results(name, errors=[f"could not run: {exc}"])
                log(f"{name}: {exc}")
            if not args.keep:
                shutil.rmtree(server_dir / ("data" if name == "dockyard" else "storage"), ignore_errors=True)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.perf_counter() - clock

    table = rows(params, results.get("dockyard"), results.get("reference"))
    versions = [f"{r.server}: {r.version}" for r in results.values() if r.version]
    command = shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; wall time {elapsed:.0f} s; load average {load_start} at start, "
        f"{load_average()} at end",
        *machine_facts(),
        *versions,
        f"Dockyard source: commit {source_revision()}",
        f"command: `{command}`",
    ]
    notes = [f"{r.server}: {note}" for r in results.values() for note in r.notes]
    errors = [f"{r.server}: {err}" for r in results.values() for err in r.errors]

    print()
    print(text_table(table))
    print()
    print(RATIO_NOTE)
    for line in facts + notes:
        print(f"- {line}")
    for err in errors:
        print(f"ERROR {err}", file=sys.stderr)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    markdown = [
        "# Dockyard vs reference registry",
        "",
        markdown_table(table),
        "",
        RATIO_NOTE,
        "",
        *(f"- {line}" for line in METHOD_NOTES),
        "",
        *(f"- {line}" for line in facts),
        *(f"- {line}" for line in notes),
        *(f"- ERROR {line}" for line in errors),
        "",
    ]
    args.output.write_text("\n".join(markdown))
    log(f"wrote {args.output}")
    return 1 if errors or len(results) < len(wanted) else 0


if __name__ == "__main__":
    sys.exit(main())
