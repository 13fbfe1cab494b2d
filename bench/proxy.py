"""``python -m bench.run --config proxy``: the pull-through cache's blob path (issue 19's budget).

Debian's ``docker-registry`` is the upstream; a Dockyard (default settings, ``--open``) has an organization
``cache`` that is a proxy of it (made with ``dockyard org create`` and ``dockyard proxy add`` before the server
starts). For each round a blob of its own (``--size-mib``, 1 GiB by default) is pushed to the upstream, then pulled,
every pull digest-checked (sha256 in a second thread while the next buffers arrive), in this order:

1. direct from the upstream;
2. through the proxy, first pull (a miss: Dockyard fetches it from the upstream and streams it to the client while
   it stores it);
3. through the proxy again (a hit: served from Dockyard's store, the upstream is not asked);
4. the same blob pushed to an ordinary Dockyard repository and pulled from there (the local pull).

Budget: the miss at least 80 % of the direct pull's throughput, the hit at least the local pull's. Medians over the
rounds; the table goes to stdout and ``bench/results/latest-proxy.md`` with the machine facts and load.
"""

from __future__ import annotations

import statistics
import subprocess
import time
from pathlib import Path

from bench.data import BigBlob, BigData
from bench.http import FileSlice, SyncConnection, expect, path_of, with_query
from bench.servers import DockyardServer, ReferenceServer, Server
from bench.workload import MB, OCTET, Results, log, pull_blob

NAMESPACE = "cache"
UPSTREAM_REPO = "upstream/big"
LOCAL_REPO = "bench/big"
MISS_BUDGET = 0.80  # the miss against the direct pull
HIT_BUDGET = 1.00  # the hit against the local pull
HEADER = ("pull of the blob (sha256 checked)", "MB/s (median)", "budget", "ratio")
ROWS = (
    ("direct from the upstream (docker-registry)", "direct"),
    ("local pull from Dockyard (a pushed repository)", "local"),
    ("through the proxy, first pull (miss)", "miss"),
    ("through the proxy, second pull (hit)", "hit"),
)


class ProxyDockyard(DockyardServer):
    """Dockyard with the organization ``cache`` made a proxy of ``upstream_url`` before it starts."""

    name = "dockyard-proxy"

    def __init__(self, workdir: Path, upstream_url: str) -> None:
        super().__init__(workdir)
        self.upstream_url = upstream_url

    def _cli(self, *args: str) -> None:
        command = [self.executable(), *args[:2], "--data-dir", str(self.data_dir), *args[2:]]
        done = subprocess.run(command, env=self.environment(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}")

    def start(self, timeout: float = 60.0) -> None:
        self._cli("user", "create", "--init", "--admin", "benchadmin")
        self._cli("org", "create", NAMESPACE, "--owner", "benchadmin")
        self._cli("proxy", "add", NAMESPACE, self.upstream_url)
        super().start(timeout)


def push(server: Server, repo: str, big: BigData, blob: BigBlob) -> None:
    """POST an upload, then one PUT with the whole blob (distribution answers a POST with a digest 202 too)."""
    with SyncConnection(server.host, server.port) as conn:
        started = expect(conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="start upload")
        location = path_of(started.header("location"))
        body = FileSlice(str(big.path), blob.offset, blob.size)
        expect(conn.request("PUT", with_query(location, f"digest={blob.digest}"), OCTET, body), 201, what="PUT")


def timed_pull(server: Server, target: str, blob: BigBlob, what: str) -> tuple[float, float]:
    """Pull ``target`` from ``server`` on a fresh connection; (MB/s, Dockyard CPU seconds or 0)."""
    cpu0 = server.cpu_seconds()
    with SyncConnection(server.host, server.port) as conn:
        started = time.perf_counter()
        pull_blob(conn, target, blob, verify=True)
        elapsed = time.perf_counter() - started
    cpu = server.cpu_seconds() - cpu0
    rate = blob.size / MB / elapsed
    log(f"  {what}: {rate:,.0f} MB/s in {elapsed:.2f} s, {server.name} CPU {cpu:.2f} s")
    return rate, cpu


def run_proxy(workdir: Path, big: BigData) -> Results:
    """The four pulls per blob of ``big`` (one round per blob); the medians in ``Results.values``."""
    results = Results("dockyard-proxy")
    samples: dict[str, list[float]] = {key: [] for _, key in ROWS}
    cpu: dict[str, list[float]] = {key: [] for _, key in ROWS}
    (workdir / "upstream").mkdir()
    (workdir / "dockyard").mkdir()
    upstream = ReferenceServer(workdir / "upstream")
    upstream.start()
    try:
        dockyard = ProxyDockyard(workdir / "dockyard", f"http://{upstream.host}:{upstream.port}")
        dockyard.start()
        try:
            results.version = dockyard.version()
            results.notes.append(f"upstream: {upstream.version()}")
            for number, blob in enumerate(big.blobs, 1):
                log(f"round {number}: {blob.size // (1024 * 1024)} MiB blob {blob.digest[:19]}…")
                push(upstream, UPSTREAM_REPO, big, blob)
                proxied = f"/v2/{NAMESPACE}/{UPSTREAM_REPO}/blobs/{blob.digest}"
                steps: list[tuple[str, Server, str]] = [
                    ("direct", upstream, f"/v2/{UPSTREAM_REPO}/blobs/{blob.digest}"),
                    ("miss", dockyard, proxied),
                    ("hit", dockyard, proxied),
                    ("local", dockyard, f"/v2/{LOCAL_REPO}/blobs/{blob.digest}"),
                ]
                for key, server, target in steps:
                    if key == "local":
                        push(dockyard, LOCAL_REPO, big, blob)
                    rate, seconds = timed_pull(server, target, blob, key)
                    samples[key].append(rate)
                    cpu[key].append(seconds)
        finally:
            dockyard.stop()
    finally:
        upstream.stop()
    for key, values in samples.items():
        if values:
            results.values[key] = statistics.median(values)
            results.values[f"cpu_{key}"] = statistics.median(cpu[key]) * 1024**3 / big.blobs[0].size
    return results


def table(results: Results) -> list[tuple[str, str, str, str]]:
    values = results.values
    budgets = {"miss": ("direct", MISS_BUDGET, "≥ 0.80 × direct"), "hit": ("local", HIT_BUDGET, "≥ 1.00 × local")}
    out: list[tuple[str, str, str, str]] = []
    for label, key in ROWS:
        rate = values.get(key)
        shown = "—" if rate is None else f"{rate:,.0f}"
        if key not in budgets:
            out.append((label, shown, "—", "—"))
            continue
        against, budget, text = budgets[key]
        base = values.get(against)
        if rate is None or not base:
            out.append((label, shown, text, "—"))
            continue
        ratio = rate / base
        out.append((label, shown, text, f"{ratio:.2f} ({'meets' if ratio >= budget else 'misses'} the budget)"))
    return out


def cpu_notes(results: Results) -> list[str]:
    """The servers' CPU per GiB of each pull (the upstream's for the direct one, Dockyard's for the others)."""
    return [
        f"{label}: server CPU {results.values[f'cpu_{key}']:.2f} s per GiB"
        for label, key in ROWS
        if f"cpu_{key}" in results.values
    ]
