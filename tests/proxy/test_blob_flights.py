"""Single-flight blob fetches through a proxy namespace, against a real upstream (docker-registry): sixteen
clients missing one big blob at once make exactly one upstream fetch and all get its exact bytes, streamed
while it is stored; a client that disconnects mid-blob leaves the cache whole; the fetch lease of a process that
died on this machine is taken over at once."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.proxy.conftest import MakeProxy, ReferenceRegistry, Request
from tests.support.checks import wait_for
from tests.support.holders import dead_holder
from tests.support.server import DockyardServer

pytestmark = pytest.mark.slow
MiB = 1024 * 1024


def _upload(reference: ReferenceRegistry, repo: str, path: Path, digest: str) -> None:
    with httpx.Client(base_url=reference.url, timeout=120) as client:
        started = client.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        target = f"{location}{'&' if '?' in location else '?'}digest={digest}"  # keeps distribution's _state
        with path.open("rb") as body:
            headers = {"Content-Length": str(path.stat().st_size), "Content-Type": "application/octet-stream"}
            done = client.put(target, content=body, headers=headers)
        assert done.status_code == 201, done.text


def _random_blob(path: Path, size: int) -> str:
    hasher = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size // MiB):
            chunk = os.urandom(MiB)
            hasher.update(chunk)
            out.write(chunk)
    return f"sha256:{hasher.hexdigest()}"


def _fetches(reference: ReferenceRegistry, digest: str) -> list[Request]:
    """The upstream's GETs of ``digest``, once it logged one: a client can have the last byte before the
    upstream wrote its access-log line (it logs after the response is sent)."""
    return wait_for(lambda: reference.requests("GET", f"/blobs/{digest}"), what=f"the upstream's log of GET {digest}")


def _fetch(url: str) -> tuple[int, str, int]:
    hasher = hashlib.sha256()
    received = 0
    with httpx.stream("GET", url, timeout=120) as response:
        for chunk in response.iter_bytes():
            hasher.update(chunk)
            received += len(chunk)
        return response.status_code, f"sha256:{hasher.hexdigest()}", received


def test_sixteen_concurrent_misses_fetch_once(
    reference: ReferenceRegistry, dockyard: DockyardServer, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    size = 128 * MiB
    digest = _random_blob(tmp_path / "big", size)
    _upload(reference, "big/blob", tmp_path / "big", digest)
    ns = make_proxy(reference.url)
    url = f"{dockyard.url}/v2/{ns}/big/blob/blobs/{digest}"

    results: list[tuple[int, str, int] | BaseException] = []
    lock = threading.Lock()
    gate = threading.Barrier(16)

    def pull() -> None:
        gate.wait()
        try:
            outcome: tuple[int, str, int] | BaseException = _fetch(url)
        except BaseException as exc:
            outcome = exc
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=pull) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == [(200, digest, size)] * 16
    assert len(_fetches(reference, digest)) == 1
    # Stored: the next pull is served from the cache.
    assert _fetch(url) == (200, digest, size)
    assert len(_fetches(reference, digest)) == 1


def test_client_disconnecting_mid_blob_does_not_corrupt_the_cache(
    reference: ReferenceRegistry, dockyard: DockyardServer, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    size = 64 * MiB
    digest = _random_blob(tmp_path / "blob", size)
    _upload(reference, "cut/blob", tmp_path / "blob", digest)
    ns = make_proxy(reference.url)
    url = f"{dockyard.url}/v2/{ns}/cut/blob/blobs/{digest}"

    with httpx.stream("GET", url, timeout=60) as response:
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == size
        received = 0
        for chunk in response.iter_bytes():
            received += len(chunk)
            if received >= MiB:
                # Bytes arrive while the blob is still being fetched: the client did not wait for all of it.
                stored = dockyard.query_sql("SELECT count(*) FROM blobs WHERE digest = :d", d=digest)
                assert stored == [(0,)]
                break  # hang up with most of the blob unsent
    assert _fetch(url) == (200, digest, size)
    assert _fetch(url) == (200, digest, size)
    # The fetch went on without the client that started it: the upstream sent the blob once.
    assert len(_fetches(reference, digest)) == 1


def test_a_fetcher_that_died_on_this_machine_is_not_waited_for(
    reference: ReferenceRegistry, dockyard: DockyardServer, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    size = 4 * MiB
    digest = _random_blob(tmp_path / "blob", size)
    _upload(reference, "orphan/blob", tmp_path / "blob", digest)
    ns = make_proxy(reference.url)
    # The fetch lease of a server process of this machine that was killed mid-fetch: it runs for centuries.
    dockyard.execute_sql(
        "INSERT INTO proxy_fetches (digest, holder, lease_until) VALUES (:d, :h, '2999-01-01 00:00:00.000000')",
        d=digest,
        h=dead_holder(),
    )
    started = time.monotonic()
    assert _fetch(f"{dockyard.url}/v2/{ns}/orphan/blob/blobs/{digest}") == (200, digest, size)
    assert time.monotonic() - started < 30
    assert len(_fetches(reference, digest)) == 1
    # The lease is released after the last bytes went out (they wait for the blob to be stored, not for that).
    wait_for(
        lambda: dockyard.query_sql("SELECT count(*) FROM proxy_fetches WHERE digest = :d", d=digest) == [(0,)],
        what="the lease released",
    )
