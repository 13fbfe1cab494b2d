"""The client workload, identical for both servers. Each phase records its numbers into a ``Results``."""

from __future__ import annotations

import asyncio
import hashlib
import json
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from bench.data import OCI_MANIFEST, BigBlob, BigData, SmallImage, make_manifest
from bench.http import (
    AsyncConnection,
    FileSlice,
    HTTPError,
    Response,
    SyncConnection,
    expect,
    path_of,
    with_query,
)
from bench.loadgen import run_load
from bench.servers import Server

MB = 1_000_000
GiB = 1024**3
OCTET = {"Content-Type": "application/octet-stream"}
T = TypeVar("T")
# The largest catalog page both servers accept: distribution 2.8 answers 400 PAGINATION_NUMBER_INVALID above its
# catalog.maxentries (1000 by default); Dockyard clamps n to catalog_max_entries (1000 by default).
CATALOG_MAX_N = 1000
# Pulls are short (about a second per GiB) and noisier than pushes: each round pulls this many times.
PULLS_PER_ROUND = 3

# A write phase's server CPU is read once the server is idle again: Dockyard dispatches events and runs jobs after
# it has answered (a registry without background work settles at once). Idle: under a fifth of a core per window.
SETTLE_WINDOW = 0.25
SETTLE_IDLE_CPU = 0.05
SETTLE_LIMIT = 120.0


@dataclass(frozen=True, slots=True)
class Params:
    size: int = 1024 * 1024 * 1024
    chunk: int = 16 * 1024 * 1024
    rounds: int = 3
    small_images: int = 512
    concurrency: int = 64
    wrk_duration: int = 10
    wrk_connections: int = 64
    wrk_threads: int = 2
    range_connections: int = 16
    range_length: int = 1024 * 1024
    tags: int = 5000
    repos: int = 2000
    mounts: int = 1000
    page: int = 100
    list_repeats: int = 10
    # The scale-out section trims these: one pull variant, fewer pulls, page 1 of the listings only.
    pulls_per_round: int = PULLS_PER_ROUND
    pull_discard: bool = True
    full_listings: bool = True
    list_budget: float | None = None  # seconds of timed listing runs after which the repetitions stop


@dataclass
class Results:
    server: str
    version: str = ""
    values: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pull_blob(conn: SyncConnection, target: str, blob: BigBlob, verify: bool) -> None:
    """GET ``target`` (the blob). With ``verify``, a second thread hashes filled buffers while the next ones
    arrive, and a digest other than the blob's is an ``HTTPError``."""
    buffer_size = 4 * 1024 * 1024
    free: queue.Queue[bytearray] = queue.Queue()
    for _ in range(4 if verify else 1):
        free.put(bytearray(buffer_size))
    filled: queue.Queue[tuple[bytearray, int] | None] = queue.Queue()
    hasher = hashlib.sha256()

    def hash_loop() -> None:
        while (item := filled.get()) is not None:
            buf, n = item
            hasher.update(memoryview(buf)[:n])
            free.put(buf)

    def deliver(buf: bytearray, n: int) -> None:
        if verify:
            filled.put((buf, n))
        else:
            free.put(buf)

    thread = threading.Thread(target=hash_loop, daemon=True)
    if verify:
        thread.start()
    try:
        status, _, total = conn.download(target, {}, free.get, deliver)
    finally:
        if verify:
            filled.put(None)
            thread.join()
    if status != 200 or total != blob.size:
        raise HTTPError(f"pull: HTTP {status}, {total} of {blob.size} bytes")
    if verify and f"sha256:{hasher.hexdigest()}" != blob.digest:
        raise HTTPError("pull: digest mismatch")


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


async def for_each(
    host: str, port: int, count: int, concurrency: int, fn: Callable[[AsyncConnection, int], Awaitable[None]]
) -> float:
    """Run ``fn(conn, i)`` for i in 0..count-1 on ``concurrency`` keep-alive connections; return seconds."""
    items = iter(range(count))

    async def worker() -> None:
        conn = AsyncConnection(host, port)
        try:
            for i in items:
                await fn(conn, i)
        finally:
            await conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, count)))))
    return time.perf_counter() - start


def _next_link(response: Response) -> str | None:
    link = response.header("link")
    match = re.search(r"<([^>]+)>\s*;\s*rel=\"?next\"?", link)
    return path_of(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class WrkResult:
    rps: float
    requests: int
    bad_status: int
    socket_errors: int


def run_wrk(
    url: str, *, connections: int, threads: int, seconds: int, headers: dict[str, str], script: Path | None = None
) -> WrkResult:
    command = ["wrk", "-c", str(connections), "-t", str(threads), "-d", f"{seconds}s", "--timeout", "10s"]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if script is not None:
        command += ["-s", str(script)]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=False, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    rps = re.search(r"Requests/sec:\s*([0-9.]+)", out.stdout)
    total = re.search(r"([0-9]+) requests in", out.stdout)
    if rps is None or total is None:
        raise RuntimeError(f"cannot parse wrk output:\n{out.stdout}")
    bad = re.search(r"Non-2xx or 3xx responses:\s*([0-9]+)", out.stdout)
    errors = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), timeout ([0-9]+)", out.stdout)
    return WrkResult(
        float(rps.group(1)),
        int(total.group(1)),
        int(bad.group(1)) if bad else 0,
        sum(int(g) for g in errors.groups()) if errors else 0,
    )


_RANGE_SCRIPT = """\
local size = {size}
local length = {length}
local path = "{path}"
local seeded = false
function setup(thread)
  counter = (counter or 0) + 1
  thread:set("id", counter)
end
function request()
  if not seeded then
    math.randomseed(20261127 + 7919 * (id or 0))
    seeded = true
  end
  local start = math.random(0, size - length)
  return wrk.format("GET", path, {{["Range"] = string.format("bytes=%d-%d", start, start + length - 1)}})
end
"""


class Workload:
    """Everything the benchmark does against one server, in a fixed order."""

    TAGS_REPO = "bench/tags"

    def __init__(self, server: Server, big: BigData, images: list[SmallImage], params: Params, workdir: Path) -> None:
        self.server = server
        self.big = big
        self.images = images
        self.params = params
        self.workdir = workdir
        self.results = Results(server.name, server.version())
        self.host = server.host
        self.port = server.port

    # -- driver -----------------------------------------------------------------------------------------------

    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        return [
            ("big-blob pushes and pulls", self.big_blobs),
            ("random range reads", self.range_reads),
            ("small images", self.small_images),
            ("manifest GET/HEAD", self.manifest_wrk),
            ("tags list", self.tags_list),
            ("catalog", self.catalog),
            ("cross-repo mounts", self.mounts),
        ]

    def run(self) -> Results:
        for name, phase in self.phases():
            if not self.server.alive():
                self.results.errors.append(f"{name}: skipped, the server is not running")
                continue
            log(f"{self.server.name}: {name}")
            try:
                phase()
            except Exception as exc:
                self.results.errors.append(f"{name}: {exc}")
                log(f"{self.server.name}: {name} FAILED: {exc}\n{traceback.format_exc()}")
        if self.server.alive():
            self.results.values["hwm"] = self.server.hwm_mib()
        else:
            self.results.errors.append(f"server died:\n{self.server.log_tail()}")
        return self.results

    def _concurrently(
        self,
        key: str | None,
        what: str,
        count: int,
        fn: Callable[[AsyncConnection, int], Awaitable[None]],
        unit: tuple[str, str],
    ) -> None:
        """Run ``fn`` for 0..count-1 on ``concurrency`` connections. Records operations per second as ``key``
        and the server CPU ms per operation as ``cpu_<key>``: CPU per operation barely moves when other work
        shares the machine, and tells CPU-bound from waiting. The CPU counts what the operations set off in the
        background too (events, jobs): it is read once the server has settled after the last answer."""
        cpu0 = self.server.cpu_seconds()
        elapsed = run_async(for_each(self.host, self.port, count, self.params.concurrency, fn))
        foreground = self.server.cpu_seconds() - cpu0
        settling = self._settle()
        cpu = self.server.cpu_seconds() - cpu0
        rate = count / elapsed if elapsed > 0 else 0.0
        if count:
            if key is not None:
                self.results.values[key] = rate
                self.results.values[f"cpu_{key}"] = 1000 * cpu / count
            self.results.notes.append(
                f"{what}: {rate:,.1f} {unit[1]}/s, server CPU {1000 * cpu / count:.2f} ms per {unit[0]} "
                f"({100 * foreground / elapsed:.0f}% of one core while answering; {cpu - foreground:.2f} CPU-s "
                f"of it in the {settling:.1f} s after the last answer, finishing what the requests set off)"
            )
        log(
            f"  {what}: {rate:,.1f} {unit[1]}/s in {elapsed:.2f} s, server CPU {cpu:.2f} s "
            f"(idle again {settling:.1f} s after the last answer)"
        )

    def _settle(self) -> float:
        """Wait until the server has finished the background work the last phase set off — its process tree used
        less than ``SETTLE_IDLE_CPU`` CPU-s in each of two consecutive ``SETTLE_WINDOW``s —, at most
        ``SETTLE_LIMIT`` seconds; returns the wait."""
        start = time.perf_counter()
        quiet, last = 0, self.server.cpu_seconds()
        while quiet < 2 and time.perf_counter() - start < SETTLE_LIMIT:
            time.sleep(SETTLE_WINDOW)
            now = self.server.cpu_seconds()
            quiet = quiet + 1 if now - last < SETTLE_IDLE_CPU else 0
            last = now
        return time.perf_counter() - start

    def _record(self, key: str, samples: list[float]) -> None:
        if samples:
            self.results.values[key] = statistics.median(samples)

    # -- 1 GiB blobs ------------------------------------------------------------------------------------------

    def _start_session(self, conn: SyncConnection, repo: str) -> str:
        response = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="start upload")
        return path_of(response.header("location"))

    def push_monolithic(self, conn: SyncConnection, repo: str, blob: BigBlob) -> None:
        """POST a session, then one PUT with the whole body and the digest."""
        location = self._start_session(conn, repo)
        body = FileSlice(str(self.big.path), blob.offset, blob.size)
        response = conn.request("PUT", with_query(location, f"digest={blob.digest}"), OCTET, body)
        expect(response, 201, what="monolithic PUT")

    def push_chunked(self, conn: SyncConnection, repo: str, blob: BigBlob) -> None:
        """POST a session, PATCH ``chunk``-sized pieces with Content-Range, close with an empty PUT."""
        location = self._start_session(conn, repo)
        chunk = self.params.chunk
        for start in range(0, blob.size, chunk):
            length = min(chunk, blob.size - start)
            headers = {**OCTET, "Content-Range": f"{start}-{start + length - 1}"}
            body = FileSlice(str(self.big.path), blob.offset + start, length)
            response = expect(conn.request("PATCH", location, headers, body), 202, what=f"PATCH at {start}")
            location = path_of(response.header("location"))
        response = conn.request("PUT", with_query(location, f"digest={blob.digest}"), OCTET, b"")
        expect(response, 201, what="closing PUT")

    def pull(self, conn: SyncConnection, repo: str, blob: BigBlob, verify: bool) -> None:
        pull_blob(conn, f"/v2/{repo}/blobs/{blob.digest}", blob, verify)

    def _timed(self, key: str, nbytes: int, action: Callable[[], None]) -> tuple[float, float]:
        """Run ``action``; return (MB/s, server CPU seconds per GiB)."""
        cpu0 = self.server.cpu_seconds()
        start = time.perf_counter()
        action()
        elapsed = time.perf_counter() - start
        cpu = self.server.cpu_seconds() - cpu0
        rate = nbytes / MB / elapsed
        log(f"  {key}: {rate:,.0f} MB/s in {elapsed:.2f} s, server CPU {cpu:.2f} s")
        return rate, cpu * GiB / nbytes

    def big_blobs(self) -> None:
        repo = "bench/big"
        size = self.params.size
        samples: dict[str, list[float]] = {}

        def add(key: str, measured: tuple[float, float]) -> None:
            samples.setdefault(key, []).append(measured[0])
            samples.setdefault(f"cpu_{key}", []).append(measured[1])

        first = self.big.blobs[0]
        with SyncConnection(self.host, self.port) as conn:
            for r in range(self.params.rounds):
                mono, chunked = self.big.blobs[2 * r], self.big.blobs[2 * r + 1]
                if r == 0:
                    self.results.values["rss_before_push"] = self.server.rss_mib()
                add("push_mono", self._timed("monolithic push", size, partial(self.push_monolithic, conn, repo, mono)))
                if r == 0:
                    self.results.values["rss_after_push"] = self.server.rss_mib()
                    self.results.values["hwm_after_push"] = self.server.hwm_mib()
                add("push_chunked", self._timed("chunked push", size, partial(self.push_chunked, conn, repo, chunked)))
                for _ in range(self.params.pulls_per_round):
                    add("pull_check", self._timed("pull + sha256", size, partial(self.pull, conn, repo, first, True)))
                    if self.params.pull_discard:
                        add(
                            "pull_discard",
                            self._timed("pull, no check", size, partial(self.pull, conn, repo, first, False)),
                        )
        for key, values in samples.items():
            self._record(key, values)
            if not key.startswith("cpu_") and len(values) > 1:
                self.results.notes.append(f"{key} MB/s, each run in order: {', '.join(f'{v:,.0f}' for v in values)}")

    # -- range reads -----------------------------------------------------------------------------------------

    def range_reads(self) -> None:
        blob = self.big.blobs[0]
        path = f"/v2/bench/big/blobs/{blob.digest}"
        length = min(self.params.range_length, blob.size)
        with SyncConnection(self.host, self.port) as conn:
            probe = conn.request("GET", path, {"Range": f"bytes=0-{length - 1}"})
        if probe.status != 206 or len(probe.body) != length:
            raise HTTPError(f"range probe: HTTP {probe.status} with {len(probe.body)} bytes")
        script = self.workdir / "range.lua"
        script.write_text(_RANGE_SCRIPT.format(size=blob.size, length=length, path=path))
        result = self._wrk(path, {}, script, self.params.range_connections)
        self.results.values["range_rps"] = result.rps
        self._wrk_note("range reads", result)

    def _wrk(self, path: str, headers: dict[str, str], script: Path | None, connections: int) -> WrkResult:
        result = run_wrk(
            f"http://{self.host}:{self.port}{path}",
            connections=connections,
            threads=self.params.wrk_threads,
            seconds=self.params.wrk_duration,
            headers=headers,
            script=script,
        )
        log(f"  wrk {path[:60]}: {result.rps:,.0f} req/s, {result.requests} requests")
        return result

    def _wrk_note(self, what: str, result: WrkResult) -> None:
        if result.bad_status or result.socket_errors:
            self.results.notes.append(
                f"{what}: {result.bad_status} non-2xx responses and {result.socket_errors} socket errors "
                f"out of {result.requests} requests"
            )

    # -- small images ----------------------------------------------------------------------------------------

    @staticmethod
    async def _push_blob(conn: AsyncConnection, repo: str, digest: str, data: bytes) -> None:
        """What docker and skopeo do per blob: HEAD (absent), POST a session, PUT the body with the digest."""
        head = await conn.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        if head.status == 200:
            return
        expect(head, 404, what="blob HEAD")
        started = expect(await conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="start upload")
        target = with_query(path_of(started.header("location")), f"digest={digest}")
        expect(await conn.request("PUT", target, OCTET, data), 201, what="blob PUT")

    async def _push_image(self, conn: AsyncConnection, i: int) -> None:
        image = self.images[i]
        await self._push_blob(conn, image.repo, image.config_digest, image.config)
        await self._push_blob(conn, image.repo, image.layer_digest, image.layer)
        response = await conn.request(
            "PUT", f"/v2/{image.repo}/manifests/latest", {"Content-Type": OCI_MANIFEST}, image.manifest
        )
        expect(response, 201, what="manifest PUT")

    async def _pull_image(self, conn: AsyncConnection, i: int) -> None:
        image = self.images[i]
        manifest = expect(
            await conn.request("GET", f"/v2/{image.repo}/manifests/latest", {"Accept": OCI_MANIFEST}),
            200,
            what="manifest GET",
        )
        if hashlib.sha256(manifest.body).hexdigest() != image.manifest_digest.removeprefix("sha256:"):
            raise HTTPError(f"{image.repo}: manifest digest mismatch")
        for digest in (image.config_digest, image.layer_digest):
            blob = expect(await conn.request("GET", f"/v2/{image.repo}/blobs/{digest}"), 200, what="blob GET")
            if f"sha256:{hashlib.sha256(blob.body).hexdigest()}" != digest:
                raise HTTPError(f"{image.repo}: blob digest mismatch")

    def small_images(self) -> None:
        n = len(self.images)
        self._concurrently("small_push", "small image push", n, self._push_image, ("image", "images"))
        self._concurrently("small_pull", "small image pull", n, self._pull_image, ("image", "images"))

    # -- manifests under wrk ---------------------------------------------------------------------------------

    def manifest_wrk(self) -> None:
        """GET with wrk as the issue asks; HEAD with bench.loadgen (wrk cannot do HEAD), and GET with it too
        so that the HEAD figure has a same-tool GET figure beside it."""
        path = f"/v2/{self.images[0].repo}/manifests/latest"
        headers = {"Accept": OCI_MANIFEST}
        connections = self.params.wrk_connections
        cpu0 = self.server.cpu_seconds()
        result = self._wrk(path, headers, None, connections)
        cpu = self.server.cpu_seconds() - cpu0
        self.results.values["manifest_get"] = result.rps
        if result.requests:
            self.results.values["cpu_manifest_get"] = 1e6 * cpu / result.requests
        self._wrk_note("manifest GET (wrk)", result)
        for method in ("GET", "HEAD"):
            load = run_load(
                f"http://{self.host}:{self.port}{path}",
                method=method,
                connections=connections,
                threads=self.params.wrk_threads,
                seconds=self.params.wrk_duration,
                headers=headers,
            )
            self.results.values[f"manifest_{method.lower()}_loadgen"] = float(load["rps"])
            log(f"  loadgen {method} {path[:60]}: {load['rps']:,.0f} req/s, {load['requests']} requests")
            if load["bad_status"] or load["errors"]:
                self.results.notes.append(
                    f"manifest {method} (loadgen): {load['bad_status']} non-2xx responses and {load['errors']} "
                    f"connection errors out of {load['requests']} requests"
                )

    # -- listings --------------------------------------------------------------------------------------------

    async def _list_all(self, conn: AsyncConnection, path: str, key: str) -> tuple[list[str], int]:
        """Follow Link headers from ``path``; return every entry and the number of pages."""
        entries: list[str] = []
        pages = 0
        target: str | None = path
        while target is not None:
            response = expect(await conn.request("GET", target), 200, what=f"GET {target[:80]}")
            entries.extend(json.loads(response.body)[key] or [])
            pages += 1
            target = _next_link(response)
        return entries, pages

    async def _time_listings(
        self, path: str, field: str, expected: int, listings: list[tuple[str, str, bool]]
    ) -> dict[str, float]:
        """For each (result key, query, follow Links?): the median ms over ``list_repeats`` runs after one that
        warms caches up. A followed listing must return exactly ``expected`` entries; how many pages it took goes
        into the notes. With ``list_budget``, the repetitions stop once they have taken that many seconds, and a
        warm-up run slower than the budget is the only sample."""
        timings: dict[str, float] = {}
        budget_ms = None if self.params.list_budget is None else 1000 * self.params.list_budget
        conn = AsyncConnection(self.host, self.port)
        try:
            for key, query, follow in listings:
                target = with_query(path, query) if query else path
                samples: list[float] = []
                for _ in range(self.params.list_repeats + 1):
                    start = time.perf_counter()
                    if follow:
                        entries, pages = await self._list_all(conn, target, field)
                    else:
                        response = expect(await conn.request("GET", target), 200, what=f"GET {target}")
                        entries, pages = json.loads(response.body)[field] or [], 1
                    samples.append((time.perf_counter() - start) * 1000)
                    if budget_ms is not None and (samples[0] > budget_ms or sum(samples[1:]) > budget_ms):
                        break
                timed = samples[1:] or samples
                timings[key] = statistics.median(timed)
                if follow and len(entries) != expected:
                    raise HTTPError(f"{target}: listed {len(entries)} entries, expected {expected}")
                wanted = expected if follow else min(expected, self.params.page)
                note = f"{target}: {len(entries)} entries in {pages} page(s)"
                if len(entries) != wanted:
                    note += f" (expected {wanted}: the server ignores n)"
                if len(timed) < self.params.list_repeats:
                    runs = ", ".join(f"{ms:,.0f}" for ms in samples)
                    note += (
                        f"; {len(timed)} timed run(s) instead of {self.params.list_repeats}: the runs took "
                        f"{runs} ms, over the {self.params.list_budget:g} s budget"
                        + ("" if samples[1:] else " (the only run is the warm-up)")
                    )
                self.results.notes.append(note)
                log(f"  {target}: {timings[key]:.2f} ms, {len(entries)} entries in {pages} page(s)")
        finally:
            await conn.close()
        return timings

    def tags_list(self) -> None:
        count = self.params.tags
        self.fill_tags(self.TAGS_REPO, count)
        listings = [("tags_full", "", True)] if self.params.full_listings else []
        listings.append(("tags_page", f"n={self.params.page}", False))
        path = f"/v2/{self.TAGS_REPO}/tags/list"
        self.results.values.update(run_async(self._time_listings(path, "tags", count, listings)))

    def fill_tags(self, repo: str, count: int) -> None:
        """Tags t00000… on the first small image's manifest, by manifest PUTs (their rate is recorded)."""
        source = self.images[0]
        manifest = make_manifest(source.config, source.layer)

        async def setup() -> None:
            conn = AsyncConnection(self.host, self.port)
            try:
                for digest in (source.config_digest, source.layer_digest):
                    target = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source.repo}"
                    expect(await conn.request("POST", target), 201, what="mount for tags")
            finally:
                await conn.close()

        async def put_tag(conn: AsyncConnection, i: int) -> None:
            response = await conn.request(
                "PUT", f"/v2/{repo}/manifests/t{i:05d}", {"Content-Type": OCI_MANIFEST}, manifest
            )
            expect(response, 201, what="manifest PUT by tag")

        run_async(setup())
        self._concurrently("tag_put", "manifest PUT by tag", count, put_tag, ("request", "requests"))

    async def _make_repo(self, conn: AsyncConnection, repo: str) -> None:
        source = self.images[0]
        for digest in (source.config_digest, source.layer_digest):
            target = f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source.repo}"
            expect(await conn.request("POST", target), 201, what="mount for catalog")
        response = await conn.request(
            "PUT", f"/v2/{repo}/manifests/latest", {"Content-Type": OCI_MANIFEST}, source.manifest
        )
        expect(response, 201, what="manifest PUT for catalog")

    def existing_repos(self) -> int:
        """How many repositories the catalog lists before the catalog phase adds its own."""

        async def count_repos() -> int:
            conn = AsyncConnection(self.host, self.port)
            try:
                return len((await self._list_all(conn, "/v2/_catalog", "repositories"))[0])
            finally:
                await conn.close()

        return run_async(count_repos())

    def fill_catalog(self, count: int) -> None:
        """Repositories catalog/r00000… (2 mounts and a manifest PUT each)."""

        async def make(conn: AsyncConnection, i: int) -> None:
            await self._make_repo(conn, f"catalog/r{i:05d}")

        what = "new repository (2 mounts + manifest PUT)"
        self._concurrently(None, what, count, make, ("repository", "repositories"))

    def catalog(self) -> None:
        existing = self.existing_repos()
        missing = max(0, self.params.repos - existing)
        self.fill_catalog(missing)
        total = max(existing, self.params.repos)
        listings = (
            [("catalog_full", "", True), ("catalog_full_n", f"n={min(total, CATALOG_MAX_N)}", True)]
            if self.params.full_listings
            else []
        )
        listings.append(("catalog_page", f"n={self.params.page}", False))
        self.results.values.update(run_async(self._time_listings("/v2/_catalog", "repositories", total, listings)))
        self.results.notes.append(f"catalog: {existing} repositories existed before, {missing} were added")

    # -- mounts ----------------------------------------------------------------------------------------------

    def mounts(self) -> None:
        source = self.images[0]

        async def mount(conn: AsyncConnection, i: int) -> None:
            target = f"/v2/mount/r{i:05d}/blobs/uploads/?mount={source.layer_digest}&from={source.repo}"
            expect(await conn.request("POST", target), 201, what="cross-repo mount")

        self._concurrently("mounts", "cross-repo mount", self.params.mounts, mount, ("mount", "mounts"))
