"""Several ``dockyard serve`` processes sharing one DB and one blob store behave as one registry.

In the scale-out run the replicas share PostgreSQL and the S3 bucket; in the embedded run they share the SQLite
file and the data directory (several processes on one host). A round-robin balancer sends each new connection
to the next replica, so a client's requests land on different processes.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Tool, get_manifest
from tests.support.images import Layout, blob_digests, index_entry
from tests.support.lb import RoundRobinBalancer, balancer
from tests.support.oci import OCI_MANIFEST, push_image, sha256, unique_name
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients


FRESH_WINDOW = "fresh"  # a replicas parameter: a rate-limit window with time enough left (fresh_window)


def fresh_window(left: float = 240) -> int:
    """A pull-rate window length whose current window (windows are aligned to the clock) has at least ``left``
    seconds to go: the test then runs in one window without waiting for the next."""
    window = 600
    while window - time.time() % window < left:
        window += 7
    return window


@pytest.fixture
def replicas(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[list[DockyardServer]]:
    env = {"DOCKYARD_UPLOAD_LEASE_SECONDS": "4", "DOCKYARD_GC_INTERVAL_SECONDS": "2"}
    env.update(getattr(request, "param", {}))
    if env.get("DOCKYARD_RATE_LIMIT_WINDOW_SECONDS") == FRESH_WINDOW:
        env["DOCKYARD_RATE_LIMIT_WINDOW_SECONDS"] = str(fresh_window())
    data_dir = tmp_path / "shared"
    servers = [DockyardServer(data_dir, env=dict(env)) for _ in range(3)]
    request.node.replicas_started = time.monotonic()
    try:
        servers[0].start()  # the first migrates the shared DB; the others find it migrated and start together
        with ThreadPoolExecutor(len(servers) - 1) as pool:
            list(pool.map(DockyardServer.start, servers[1:]))
        yield servers
    finally:
        for srv in servers:
            srv.stop()


@pytest.fixture
def lb(replicas: list[DockyardServer]) -> Iterator[RoundRobinBalancer]:
    with balancer([srv.port for srv in replicas]) as rr:
        yield rr


def fresh(client_url: str) -> httpx.Client:
    """A client whose every request opens a new connection, so the balancer spreads requests."""
    return httpx.Client(base_url=client_url, timeout=60, limits=httpx.Limits(max_keepalive_connections=0))


def test_skopeo_copy_through_three_replicas(
    skopeo: Tool, lb: RoundRobinBalancer, replicas: list[DockyardServer], multiarch_layout: Layout, tmp_path: Path
) -> None:
    repo = unique_name("replicas")
    skopeo.run(
        "copy",
        "--preserve-digests",
        "--all",
        "--dest-tls-verify=false",
        multiarch_layout.ref,
        f"docker://{lb.host}/{repo}:v1",
    )
    assert sum(1 for count in lb.connections.values() if count) >= 2, lb.connections
    # Every replica serves what was pushed through the others, at once.
    for srv in replicas:
        with httpx.Client(base_url=srv.url) as direct:
            response = get_manifest(direct, repo, "v1")
            assert response.status_code == 200
            assert response.headers["docker-content-digest"] == multiarch_layout.top_digest
    out = tmp_path / "out"
    skopeo.run(
        "copy",
        "--preserve-digests",
        "--all",
        "--src-tls-verify=false",
        f"docker://{lb.host}/{repo}:v1",
        f"oci:{out}:v1",
    )
    assert index_entry(out, "v1")["digest"] == multiarch_layout.top_digest
    assert blob_digests(out) == multiarch_layout.blob_digests()


def test_chunked_upload_across_replicas(lb: RoundRobinBalancer, replicas: list[DockyardServer]) -> None:
    repo = unique_name("replicas")
    data = os.urandom(6 * 1024 * 1024 + 12345)
    chunk = 1024 * 1024 + 7
    seen_ports: set[int] = set()
    with fresh(f"http://{lb.host}") as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        for offset in range(0, len(data), chunk):
            part = data[offset : offset + chunk]
            before = dict(lb.connections)
            response = client.patch(
                location, content=part, headers={"Content-Range": f"{offset}-{offset + len(part) - 1}"}
            )
            assert response.status_code == 202, response.text
            seen_ports.update(p for p in lb.connections if lb.connections[p] != before[p])
            location = response.headers["location"]
        assert client.put(location, params={"digest": sha256(data)}).status_code == 201
    assert len(seen_ports) == 3  # the chunks really went through every replica
    for srv in replicas:
        with httpx.Client(base_url=srv.url, timeout=60) as direct:
            assert sha256(direct.get(f"/v2/{repo}/blobs/{sha256(data)}").content) == sha256(data)


def test_killed_replica_mid_upload_client_retries_elsewhere(
    lb: RoundRobinBalancer, replicas: list[DockyardServer]
) -> None:
    repo = unique_name("replicas")
    data = os.urandom(64 * 1024 * 1024)
    victim = replicas[0]
    with httpx.Client(base_url=victim.url, timeout=60) as direct:
        location = direct.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        first = 8 * 1024 * 1024
        assert direct.patch(location, content=data[:first]).status_code == 202

        def slow_rest() -> Iterator[bytes]:
            for i in range(first, len(data), 1024 * 1024):
                time.sleep(0.01)
                yield data[i : i + 1024 * 1024]

        errors: list[BaseException] = []

        def stream() -> None:
            try:
                direct.patch(location, content=slow_rest())
            except httpx.HTTPError as exc:
                errors.append(exc)

        thread = threading.Thread(target=stream)
        thread.start()
        time.sleep(0.3)
        victim.kill()
        thread.join(60)
    assert errors, "the upload to the killed replica should have failed"
    # The client retries against the balancer (another replica): ask where the upload stands, resume from there —
    # at once: the killed replica's lease on the upload names a process of this machine that is gone (core.holders).
    with fresh(f"http://{lb.host}") as client:
        status = client.get(location)
        assert status.status_code == 204, status.text
        offset = int(re.fullmatch(r"0-(\d+)", status.headers["range"]).group(1)) + 1  # type: ignore[union-attr]
        assert first <= offset <= len(data)
        response = client.put(
            location,
            params={"digest": sha256(data)},
            content=data[offset:],
            headers={"Content-Range": f"{offset}-{len(data) - 1}"},
        )
        assert response.status_code == 201, response.text
        assert sha256(client.get(f"/v2/{repo}/blobs/{sha256(data)}").content) == sha256(data)


def test_scheduled_gc_runs_once_per_interval_across_replicas(
    replicas: list[DockyardServer], request: pytest.FixtureRequest
) -> None:
    time.sleep(8)
    runs = []
    for srv in replicas:
        text = httpx.get(f"{srv.url}/metrics").text
        match = re.search(r"^dockyard_gc_runs_total (\S+)$", text, re.MULTILINE)
        runs.append(float(match.group(1)) if match else 0.0)
    elapsed = time.monotonic() - request.node.replicas_started
    # Three replicas each wake every ~2 s. Were each to collect on its own, there would be about three runs
    # per interval; the shared lease allows one per interval (at most one per 1.8 s).
    assert sum(runs) >= 2, runs
    assert sum(runs) <= elapsed / 1.8 + 1, (runs, elapsed)


RATE_LIMIT = 20


@pytest.mark.parametrize(
    "replicas",
    [
        {
            "DOCKYARD_RATE_LIMIT_ANONYMOUS": str(RATE_LIMIT),
            "DOCKYARD_RATE_LIMIT_WINDOW_SECONDS": FRESH_WINDOW,
            "DOCKYARD_RATE_LIMIT_FLUSH_SECONDS": "1",
        }
    ],
    indirect=True,
)
def test_three_replicas_share_one_pull_rate_counter(replicas: list[DockyardServer]) -> None:
    """Pulls spread over three replicas count against one limit: separate counters would allow 3 × the limit; the
    shared one allows the limit plus at most what the other replicas served before the counts were shared (the
    slack docs/lifecycle.md describes: about two flush intervals of pulls)."""
    repo = unique_name("ratelimited")
    clients = [httpx.Client(base_url=srv.url, timeout=60) for srv in replicas]
    try:
        digest = push_image(clients[0], repo, "v1").digest
        window = int(replicas[0].env["DOCKYARD_RATE_LIMIT_WINDOW_SECONDS"])
        assert window - time.time() % window > 120  # the whole test within one window (fresh_window)
        statuses = []
        for n in range(3 * RATE_LIMIT):
            statuses.append(get_manifest(clients[n % 3], repo, digest).status_code)
            time.sleep(0.1)  # ~10 pulls a second over the three replicas
        allowed = statuses.count(200)
        assert set(statuses) <= {200, 429}, statuses
        assert RATE_LIMIT <= allowed <= RATE_LIMIT + 14, statuses
        # Once the counts are shared every replica refuses, and the DB holds every pull that was served.
        time.sleep(3)
        for client in clients:
            refused = get_manifest(client, repo, digest)
            assert refused.status_code == 429, refused.text
            assert refused.headers["ratelimit-remaining"] == f"0;w={window}"
        assert replicas[0].query_sql("SELECT SUM(count) FROM pull_rate_counts")[0][0] == allowed
        # HEAD is never counted nor refused.
        head = clients[1].head(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200
    finally:
        for client in clients:
            client.close()
