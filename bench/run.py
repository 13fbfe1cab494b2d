"""``python -m bench.run``: Dockyard and the reference registry, one after the other, same workload, side by side.

The sections below (and ``builds``: automated builds, ``bench.builds``), all by default (``--config all``),
and ``scan`` on request:

- ``embedded``: Dockyard with default settings (SQLite + files) and the reference on its filesystem driver. Each
  server starts fresh (temp data directory) on a free loopback port, runs every phase of ``bench.workload`` and
  is stopped before the next one starts. Table in ``bench/results/latest.md``.
- ``scaleout``: Dockyard on PostgreSQL + S3 with one replica, then with ``--replicas`` behind a round-robin
  balancer, then the reference with its S3 driver, all on one S3 server (moto); see ``bench.scaleout``. Table in
  ``bench/results/latest-scaleout.md``.
- ``startup``: each server's start until ``/v2/`` answers on an initialised data directory, the CPU it took, and
  the idle memory of its whole process tree (``bench.startup``). Table in ``bench/results/latest-startup.md``.
- ``web``: Dockyard alone: the web hub's repository page of a repository with 5,000 tags, the filesystem listing
  of an image of 50,000 files (cold, building the layer index; warm), and the diff of two such images
  (``bench.web``). Table in ``bench/results/latest-web.md``.

- ``scan``: SBOM and vulnerability-matching costs, in process (``bench.scan``): the SBOM of a Debian-like image
  cold and of another sharing its base layer, matching against a generated 100,000-advisory OSV database, and the
  re-match after an import touching 1 % of packages. Table in ``bench/results/latest-scan.md``.
- ``proxy`` (not part of ``all``): a big blob pulled directly from the reference and through a Dockyard proxy of
  it, first (miss) and second (hit) pull, against a local pull (``bench.proxy``). Table in
  ``bench/results/latest-proxy.md``.

The tables go to stdout and, as Markdown with the machine facts, to those files. The exit status is 1 if any
measurement failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.data import make_big_data, make_small_images
from bench.harness import load_average, machine_facts, run_server, source_revision
from bench.report import (
    METHOD_NOTES,
    RATIO_NOTE,
    SCALEOUT_METHOD_NOTES,
    SCALEOUT_RATIO_NOTE,
    markdown_grid,
    markdown_table,
    rows,
    scaleout_header,
    scaleout_rows,
    text_grid,
    text_table,
)
from bench.servers import DockyardServer, ReferenceServer, Server
from bench.workload import Params, Results, log

MiB = 1024 * 1024
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest.md"
DEFAULT_SCALEOUT_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-scaleout.md"
DEFAULT_STARTUP_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-startup.md"
DEFAULT_RATELIMITS_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-ratelimits.md"
DEFAULT_BUILDS_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-builds.md"
DEFAULT_WEB_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-web.md"
WEB_SIZES = {"full": (5000, 50_000, 10), "quick": (200, 2000, 3)}  # tags, files, warm repeats
DEFAULT_SCAN_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-scan.md"
DEFAULT_PROXY_OUTPUT = REPO_ROOT / "bench" / "results" / "latest-proxy.md"
PROXY_ROUNDS = {"full": 2, "quick": 1}  # blobs pulled in the proxy section (each: direct, miss, hit, local)
STARTUP_ROUNDS = {"full": 5, "quick": 2}  # measured starts per server in the start-up section

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


# The scale-out section: 256 MiB blobs (moto keeps every request body in memory and is a single Python process,
# so 1 GiB would mostly measure moto), one pull variant, page 1 of the listings only.
SCALEOUT_FULL = {
    "size_mib": 256,
    "chunk_mib": 16,
    "rounds": 2,
    "pulls_per_round": 2,
    "small_images": 256,
    "concurrency": 64,
    "tags": 5000,
    "repos": 2000,
    "list_repeats": 5,
    "workers": 0,
}
SCALEOUT_QUICK = {
    "size_mib": 8,
    "chunk_mib": 4,
    "rounds": 1,
    "pulls_per_round": 1,
    "small_images": 16,
    "concurrency": 8,
    "tags": 40,
    "repos": 30,
    "list_repeats": 3,
    "workers": 1,  # a single process per replica starts in a third of the time
}
# The reference's catalog page costs one S3 LIST per repository walked, and moto answers each LIST by scanning
# the whole bucket: tens of seconds a page. Its repetitions stop after this many seconds.
LIST_BUDGET_SECONDS = 20.0
# Flags that set the same knob in both sections when given; the big-blob size and rounds have their own flags.
SHARED = ("chunk_mib", "small_images", "concurrency", "tags", "repos", "list_repeats")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config",
        choices=["embedded", "scaleout", "startup", "ratelimits", "builds", "web", "scan", "proxy", "all"],
        default="all",
        help="embedded (SQLite + files), scaleout (PostgreSQL + S3, 1 and --replicas replicas), startup (start "
        "time and idle memory), ratelimits (manifest GET with pull rate limits off and on), builds (git push to "
        "pullable image, builds per minute), web (the web hub's heavy pages), or all of them; scan (SBOM and "
        "vulnerability matching, in process) and proxy (a big blob through the pull-through cache, miss and hit, "
        "against direct and local pulls) only when asked",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 s wrk runs: proves the harness works")
    parser.add_argument("--size-mib", type=int, help="big blob size in MiB, embedded and proxy sections (1024)")
    parser.add_argument("--chunk-mib", type=int, help="PATCH chunk size for the chunked push in MiB (16)")
    parser.add_argument("--rounds", type=int, help="rounds of the big-blob pushes and pulls, embedded section (3)")
    parser.add_argument("--small-images", type=int, help="small images to push and pull (512)")
    parser.add_argument("--concurrency", type=int, help="concurrent clients for small images, tags, mounts (64)")
    parser.add_argument("--wrk-seconds", type=int, help="duration of each wrk run (10)")
    parser.add_argument("--wrk-connections", type=int, help="wrk connections for manifest GET/HEAD (64)")
    parser.add_argument("--range-connections", type=int, help="wrk connections for the range reads (16)")
    parser.add_argument("--tags", type=int, help="tags in the tags-list repository (5000)")
    parser.add_argument("--repos", type=int, help="repositories in the catalog (2000)")
    parser.add_argument("--mounts", type=int, help="cross-repo mounts (1000)")
    parser.add_argument("--list-repeats", type=int, help="timed repetitions of each listing; median shown (10)")
    parser.add_argument("--replicas", type=int, default=3, help="Dockyard replicas in the scaled-out run (3)")
    parser.add_argument("--scaleout-size-mib", type=int, help="big blob size in MiB, scale-out section (256)")
    parser.add_argument("--scaleout-rounds", type=int, help="big-blob rounds, scale-out section (2)")
    parser.add_argument(
        "--servers", choices=["both", "dockyard", "reference"], default="both", help="which servers to run"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="Markdown results file, embedded")
    parser.add_argument(
        "--scaleout-output", type=Path, default=DEFAULT_SCALEOUT_OUTPUT, help="Markdown results file, scale-out"
    )
    parser.add_argument(
        "--startup-output", type=Path, default=DEFAULT_STARTUP_OUTPUT, help="Markdown results file, start-up"
    )
    parser.add_argument(
        "--ratelimits-output", type=Path, default=DEFAULT_RATELIMITS_OUTPUT, help="Markdown results file, rate limits"
    )
    parser.add_argument("--web-output", type=Path, default=DEFAULT_WEB_OUTPUT, help="Markdown results file, web")
    parser.add_argument("--files", type=int, help="files in the web section's image (50000)")
    parser.add_argument("--web-repeats", type=int, help="warm fetches of each page, web section (10)")
    parser.add_argument("--scan-output", type=Path, default=DEFAULT_SCAN_OUTPUT, help="Markdown results file, scanning")
    parser.add_argument("--scan-advisories", type=int, help="advisories in the scan section's database (100000)")
    parser.add_argument("--startup-rounds", type=int, help="measured starts per server, start-up section (5)")
    parser.add_argument("--builds-rounds", type=int, help="warm builds measured, builds section (3)")
    parser.add_argument("--builds-parallel", type=int, help="builds pushed at once, builds section (8)")
    parser.add_argument(
        "--builds-output", type=Path, default=DEFAULT_BUILDS_OUTPUT, help="Markdown results file, builds"
    )
    parser.add_argument("--proxy-rounds", type=int, help="blobs pulled in the proxy section, one per round (2)")
    parser.add_argument("--proxy-output", type=Path, default=DEFAULT_PROXY_OUTPUT, help="Markdown results, proxy")
    parser.add_argument("--workdir", type=Path, default=None, help="parent directory for temp data (system temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory (data and server logs)")
    args = parser.parse_args(argv)
    scaleout = dict(SCALEOUT_QUICK if args.quick else SCALEOUT_FULL)
    scaleout.update({key: getattr(args, key) for key in SHARED if getattr(args, key) is not None})
    if args.scaleout_size_mib is not None:
        scaleout["size_mib"] = args.scaleout_size_mib
    if args.scaleout_rounds is not None:
        scaleout["rounds"] = args.scaleout_rounds
    args.scaleout = scaleout
    if args.builds_rounds is None:
        args.builds_rounds = 1 if args.quick else 3
    if args.builds_parallel is None:
        args.builds_parallel = 4 if args.quick else 8
    web_tags, web_files, web_repeats = WEB_SIZES["quick" if args.quick else "full"]
    args.web_tags = args.tags if args.tags is not None else web_tags
    args.files = args.files or web_files
    args.web_repeats = args.web_repeats or web_repeats
    if args.startup_rounds is None:
        args.startup_rounds = STARTUP_ROUNDS["quick" if args.quick else "full"]
    if args.proxy_rounds is None:
        args.proxy_rounds = PROXY_ROUNDS["quick" if args.quick else "full"]
    base = QUICK if args.quick else FULL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if min(args.size_mib, args.chunk_mib, args.rounds, scaleout["size_mib"], scaleout["rounds"], args.proxy_rounds) < 1:
        parser.error("sizes and rounds must be at least 1")
    if args.replicas < 2:
        parser.error("--replicas must be at least 2 (one replica always runs)")
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


def scaleout_params_from(args: argparse.Namespace) -> Params:
    so = args.scaleout
    return Params(
        size=so["size_mib"] * MiB,
        chunk=so["chunk_mib"] * MiB,
        rounds=so["rounds"],
        small_images=so["small_images"],
        concurrency=so["concurrency"],
        tags=so["tags"],
        repos=so["repos"],
        list_repeats=so["list_repeats"],
        pulls_per_round=so["pulls_per_round"],
        pull_discard=False,
        full_listings=False,
        list_budget=LIST_BUDGET_SECONDS,
    )


def _command(argv: list[str] | None) -> str:
    return shlex.join(["python", "-m", "bench.run", *(sys.argv[1:] if argv is None else argv)])


def _workdir(args: argparse.Namespace, prefix: str) -> Path:
    parent = args.workdir
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def _finish_workdir(args: argparse.Namespace, workdir: Path) -> None:
    if args.keep:
        log(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def embedded_section(args: argparse.Namespace, wanted: list[str], argv: list[str] | None) -> int:
    """Dockyard with default settings against the reference on its filesystem driver; writes ``args.output``."""
    params = params_from(args)
    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    clock = time.perf_counter()
    workdir = _workdir(args, "dockyard-bench-")
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
        _finish_workdir(args, workdir)
    elapsed = time.perf_counter() - clock

    table = rows(params, results.get("dockyard"), results.get("reference"))
    versions = [f"{r.server}: {r.version}" for r in results.values() if r.version]
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; wall time {elapsed:.0f} s; load average {load_start} at start, "
        f"{load_average()} at end",
        *machine_facts(),
        *versions,
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    notes = [f"{r.server}: {note}" for r in results.values() for note in r.notes]
    errors = [f"{r.server}: {err}" for r in results.values() for err in r.errors]

    _publish(
        args.output,
        "Dockyard vs reference registry",
        text_table(table),
        markdown_table(table),
        RATIO_NOTE,
        METHOD_NOTES,
        facts,
        notes,
        errors,
    )
    return 1 if errors or len(results) < len(wanted) else 0


def _publish(
    output: Path,
    title: str,
    text: str,
    markdown: str,
    ratio_note: str,
    method_notes: Sequence[str],
    facts: list[str],
    notes: list[str],
    errors: list[str],
) -> None:
    """Print a results table with its notes, and write the same as Markdown to ``output``."""
    print()
    print(text)
    print()
    print(ratio_note)
    for line in facts + notes:
        print(f"- {line}")
    for err in errors:
        print(f"ERROR {err}", file=sys.stderr)
    output.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        f"# {title}",
        "",
        markdown,
        "",
        ratio_note,
        "",
        *(f"- {line}" for line in method_notes),
        "",
        *(f"- {line}" for line in facts),
        *(f"- {line}" for line in notes),
        *(f"- ERROR {line}" for line in errors),
        "",
    ]
    output.write_text("\n".join(lines))
    log(f"wrote {output}")


def scaleout_section(args: argparse.Namespace, wanted: list[str], argv: list[str] | None) -> int:
    """Dockyard on PostgreSQL + S3 (one replica, then ``--replicas``) against the reference's S3 driver, on one
    S3 server; writes ``args.scaleout_output``."""
    from bench.scaleout import run_scaleout

    params = scaleout_params_from(args)
    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    clock = time.perf_counter()
    workdir = _workdir(args, "dockyard-bench-scaleout-")
    try:
        run = run_scaleout(params, workdir, args.replicas, wanted, workers=args.scaleout["workers"])
    finally:
        _finish_workdir(args, workdir)
    elapsed = time.perf_counter() - clock
    results = run.results
    labels = {"one": "dockyard ×1", "many": f"dockyard ×{args.replicas}", "reference": "reference"}

    header = scaleout_header(args.replicas)
    table = scaleout_rows(params, results.get("one"), results.get("many"), results.get("reference"))
    versions = list(dict.fromkeys(f"{r.version}" for r in results.values() if r.version))
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; wall time {elapsed:.0f} s; load average {load_start} at start, "
        f"{load_average()} at end",
        *machine_facts(),
        *versions,
        *run.facts,
        *(
            [f"each Dockyard replica ran {args.scaleout['workers']} worker process(es) (--quick), not one per core"]
            if args.scaleout["workers"]
            else []
        ),
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    notes = [f"{labels[role]}: {note}" for role, r in results.items() for note in r.notes]
    errors = [*run.errors, *(f"{labels[role]}: {err}" for role, r in results.items() for err in r.errors)]
    expected = (2 if "dockyard" in wanted else 0) + (1 if "reference" in wanted else 0)

    print()
    print(f"Scale-out: PostgreSQL + S3 (moto), {params.size // MiB} MiB blobs")
    _publish(
        args.scaleout_output,
        "Dockyard scale-out (PostgreSQL + S3) vs reference registry (S3 driver)",
        text_grid(header, table),
        markdown_grid(header, table),
        SCALEOUT_RATIO_NOTE,
        [*METHOD_NOTES[:1], *SCALEOUT_METHOD_NOTES],
        facts,
        notes,
        errors,
    )
    return 1 if errors or len(results) < expected else 0


def startup_section(args: argparse.Namespace, wanted: list[str], argv: list[str] | None) -> int:
    """Start time and idle memory of each server (``bench.startup``); writes ``args.startup_output``."""
    from bench.startup import STARTUP_METHOD, run_startup, startup_rows

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    workdir = _workdir(args, "dockyard-bench-startup-")
    results: dict[str, Results] = {}
    try:
        for name in wanted:
            server_dir = workdir / name
            server_dir.mkdir()
            server: Server = DockyardServer(server_dir) if name == "dockyard" else ReferenceServer(server_dir)
            results[name] = run_startup(server, args.startup_rounds)
    finally:
        _finish_workdir(args, workdir)
    table = startup_rows(results.get("dockyard"), results.get("reference"))
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; load average {load_start} at start, {load_average()} at end",
        *machine_facts(),
        *(f"{r.server}: {r.version}" for r in results.values() if r.version),
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    notes = [f"{r.server}: {note}" for r in results.values() for note in r.notes]
    errors = [f"{r.server}: {err}" for r in results.values() for err in r.errors]
    _publish(
        args.startup_output,
        "Start-up and idle memory: Dockyard vs reference registry",
        text_table(table),
        markdown_table(table),
        "ratio = reference/dockyard: > 1 means Dockyard is better (every measure here is lower-is-better).",
        STARTUP_METHOD,
        facts,
        notes,
        errors,
    )
    return 1 if errors else 0


def scan_section(args: argparse.Namespace, argv: list[str] | None) -> int:
    """SBOM and vulnerability-matching costs (``bench.scan``); writes ``args.scan_output``."""
    from bench.scan import ScanParams, run, scan_markdown, scan_text

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    params = ScanParams()
    if args.quick:
        params = ScanParams(packages=60, files=500, python=5, advisories=2000, images=10)
    if args.scan_advisories is not None:
        params = ScanParams(**{**params.__dict__, "advisories": args.scan_advisories})
    log(f"scan section: {params}")
    results = run(params, args.workdir, args.keep)
    notes = [
        f"{params.packages} dpkg packages ({params.packages // 3 + 1} source packages), {params.files} other files "
        f"and {params.python} Python distributions; {params.advisories:,} advisories (Debian 12, one in twenty about "
        f"an installed source package); {params.images} more images in the package index, each holding a random "
        "half of the packages",
        "in process: SQLite + filesystem store in a temporary directory, no HTTP; one run, wall-clock seconds",
    ]
    facts = [
        f"started {started:%Y-%m-%d %H:%M} UTC; load average at start {load_start}, at end {load_average()}",
        f"command: {_command(argv)}",
        f"revision: {source_revision()}",
        *machine_facts(),
    ]
    _publish(
        args.scan_output,
        "Scanning: SBOM, matching, re-matching",
        scan_text(results),
        scan_markdown(results),
        "Lower is better for every time.",
        [],
        facts,
        notes,
        results.errors,
    )
    return 1 if results.errors else 0


def ratelimits_section(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Dockyard's manifest GET with pull rate limits off and on (``bench.ratelimits``); writes
    ``args.ratelimits_output``."""
    from bench.ratelimits import HEADER, facts, run_pair, table

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    params = params_from(args)
    workdir = _workdir(args, "dockyard-bench-ratelimits-")
    try:
        results = run_pair(workdir, make_small_images(params.small_images), params)
    finally:
        _finish_workdir(args, workdir)
    off, on = results["dockyard"], results["dockyard-limits"]
    grid = table(off, on)
    notes = [f"{r.server}: {note}" for r in results.values() for note in r.notes]
    errors = [f"{r.server}: {err}" for r in results.values() for err in r.errors]
    _publish(
        args.ratelimits_output,
        "Pull rate limits: manifest GET with limits off and on",
        text_table(grid, HEADER),
        markdown_table(grid, HEADER),
        "on/off: limits on relative to off (higher is better; the issue's budget is within 10 %, i.e. >= 0.90).",
        [],
        facts(started, load_start, _command(argv)),
        notes,
        errors,
    )
    return 1 if errors else 0


def builds_section(args: argparse.Namespace, argv: list[str] | None) -> int:
    """Dockyard's automated builds: git push to pullable image, cold and warm, and builds per minute with four at
    once (``bench.builds``); writes ``args.builds_output``."""
    from bench.builds import HEADER, METHOD, rows, run_builds

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    workdir = _workdir(args, "dockyard-bench-builds-")
    try:
        result = run_builds(workdir, args.builds_rounds, args.builds_parallel)
    finally:
        _finish_workdir(args, workdir)
    grid = rows(result)
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; load average {load_start} at start, {load_average()} at end",
        *machine_facts(),
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    _publish(
        args.builds_output,
        "Automated builds: git push to pullable image",
        text_table(grid, HEADER),
        markdown_table(grid, HEADER),
        "Dockyard only: the reference registry has no builds.",
        METHOD,
        facts,
        result.notes,
        result.errors,
    )
    return 1 if result.errors else 0


def web_section(args: argparse.Namespace, argv: list[str] | None) -> int:
    """The web hub's heavy pages on Dockyard (``bench.web``); writes ``args.web_output``."""
    from bench.web import WEB_HEADER, WEB_METHOD, PageTiming, run_web, web_rows

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    workdir = _workdir(args, "dockyard-bench-web-")
    errors: list[str] = []
    timings: list[PageTiming] = []
    made: list[str] = []
    try:
        timings, made = run_web(workdir, tags=args.web_tags, files=args.files, repeats=args.web_repeats)
    except Exception as exc:
        errors.append(f"dockyard: {exc}")
        log(f"web: {exc}")
    finally:
        _finish_workdir(args, workdir)
    grid = web_rows(timings)
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; load average {load_start} at start, {load_average()} at end",
        *machine_facts(),
        *made,
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    _publish(
        args.web_output,
        "Web hub: server time of the heavy pages",
        text_table(grid, WEB_HEADER),
        markdown_table(grid, WEB_HEADER),
        "Times in milliseconds, lower is better; the issue's budget is warm pages under 100 ms on this machine kind.",
        WEB_METHOD,
        facts,
        [],
        errors,
    )
    return 1 if errors else 0


def proxy_section(args: argparse.Namespace, argv: list[str] | None) -> int:
    """A big blob through a Dockyard proxy of the reference registry, miss and hit, against a direct pull from
    the reference and a local pull (``bench.proxy``); writes ``args.proxy_output``."""
    from bench.proxy import HEADER, cpu_notes, run_proxy, table

    started = dt.datetime.now(dt.UTC)
    load_start = load_average()
    clock = time.perf_counter()
    workdir = _workdir(args, "dockyard-bench-proxy-")
    try:
        log(f"test data in {workdir}: {args.size_mib} MiB x {args.proxy_rounds} blobs (one file)")
        big = make_big_data(workdir, args.size_mib * MiB, args.proxy_rounds)
        try:
            results = run_proxy(workdir, big)
        except Exception as exc:
            results = Results("dockyard-proxy", errors=[f"could not run: {exc}"])
            log(f"proxy: {exc}")
    finally:
        _finish_workdir(args, workdir)
    facts = [
        f"date: {started:%Y-%m-%d %H:%M} UTC; wall time {time.perf_counter() - clock:.0f} s; load average "
        f"{load_start} at start, {load_average()} at end",
        *machine_facts(),
        *([results.version] if results.version else []),
        f"{args.size_mib} MiB blobs, {args.proxy_rounds} round(s): each a blob of its own, pulled directly, "
        "through the proxy twice, then pushed to a local repository and pulled from there",
        f"Dockyard source: commit {source_revision()}",
        f"command: `{_command(argv)}`",
    ]
    _publish(
        args.proxy_output,
        "Pull-through cache: a big blob through the proxy vs directly from the upstream",
        text_table(table(results), HEADER),
        markdown_table(table(results), HEADER),
        "Budget (issue 19): the miss within 80 % of the direct pull's throughput, the hit at least the local pull's.",
        [],
        facts,
        [*results.notes, *cpu_notes(results)],
        results.errors,
    )
    return 1 if results.errors else 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wanted = ["dockyard", "reference"] if args.servers == "both" else [args.servers]
    all_sections = ["embedded", "scaleout", "startup", "ratelimits", "builds", "web"]
    sections = all_sections if args.config == "all" else [args.config]
    tools = [
        *(["wrk"] if "embedded" in sections or "ratelimits" in sections else []),
        *(["docker-registry"] if "reference" in wanted or "proxy" in sections else []),
    ]
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        print(f"missing tools: {', '.join(missing)} (make system-deps installs them)", file=sys.stderr)
        return 2
    unavailable = None
    if "scaleout" in sections:
        from bench.scaleout import services_missing

        unavailable = services_missing()
        if unavailable is not None and sections == ["scaleout"]:
            print(f"cannot run the scale-out section: {unavailable}", file=sys.stderr)
            return 2

    status = 0
    if "embedded" in sections:
        status |= embedded_section(args, wanted, argv)
    if "startup" in sections:
        status |= startup_section(args, wanted, argv)
    if "ratelimits" in sections and "dockyard" in wanted:
        status |= ratelimits_section(args, argv)
    if "builds" in sections and "dockyard" in wanted:
        status |= builds_section(args, argv)
    if "web" in sections and "dockyard" in wanted:
        status |= web_section(args, argv)
    if "scan" in sections:
        status |= scan_section(args, argv)
    if "proxy" in sections:
        status |= proxy_section(args, argv)
    if "scaleout" in sections:
        if unavailable is None:
            status |= scaleout_section(args, wanted, argv)
        else:
            print(f"ERROR scale-out section skipped: {unavailable}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
