"""Crash consistency: SIGKILL the server in the middle of a large upload and of a manifest PUT, restart it over the
same data directory, and check that nothing half-done is visible and that the interrupted work can be redone.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import backend
from tests.support.checks import wait_for
from tests.support.oci import OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, push_image, unique_name
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView

pytestmark = pytest.mark.slow

MiB = 1024 * 1024
TOTAL = 200 * MiB  # the large blob, streamed from a generator, never held in memory
FIRST_CHUNK = 8 * MiB  # committed by a PATCH that completes before the crash
KILL_AFTER = 64 * MiB  # bytes of the interrupted request sent before the kill
_BASE = os.urandom(MiB)


def _block(index: int) -> bytes:
    return index.to_bytes(8, "big") + _BASE[8:]


def stream(start: int, end: int, chunk: int = MiB) -> Iterator[bytes]:
    """Bytes ``[start, end)`` of the large blob: 1 MiB blocks, each made unique by its index."""
    pos = start
    while pos < end:
        index, offset = divmod(pos, MiB)
        piece = _block(index)[offset : offset + min(chunk, end - pos)]
        yield piece
        pos += len(piece)


def digest_of(start: int, end: int) -> str:
    hasher = hashlib.sha256()
    for piece in stream(start, end):
        hasher.update(piece)
    return f"sha256:{hasher.hexdigest()}"


def assert_blob_tree_clean(server: DockyardServer) -> None:
    """Every committed blob is complete and named by its own digest; no temporary or partial objects."""
    StorageView(server).assert_blobs_intact()


def upload_size(response: httpx.Response) -> int:
    assert response.status_code in (202, 204), response.text
    end = int(response.headers["range"].split("-", 1)[1])
    return end + 1 if end > 0 else 0


@pytest.fixture
def make_client() -> Iterator[Callable[[DockyardServer], httpx.Client]]:
    """Clients on a server that may be restarted; all of them are closed at the end of the test."""
    made: list[httpx.Client] = []

    def make(server: DockyardServer) -> httpx.Client:
        made.append(httpx.Client(base_url=server.url, timeout=120))
        return made[-1]

    yield make
    for c in made:
        c.close()


def test_kill_during_large_patch_then_resume_or_restart(
    fresh_server: DockyardServer, make_client: Callable[[DockyardServer], httpx.Client]
) -> None:
    client = make_client(fresh_server)
    repo = unique_name("crash")
    blob_digest = digest_of(0, TOTAL)

    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    location = response.headers["location"]
    upload_id = location.rsplit("/", 1)[1]
    first = b"".join(stream(0, FIRST_CHUNK))
    response = client.patch(location, content=first, headers={"Content-Range": f"0-{FIRST_CHUNK - 1}"})
    assert upload_size(response) == FIRST_CHUNK
    del first

    # A second, large PATCH streamed from a generator; it pauses after KILL_AFTER bytes, and the server dies.
    reached, proceed = threading.Event(), threading.Event()
    sent = 0
    outcome: dict[str, object] = {}

    def body() -> Iterator[bytes]:
        nonlocal sent
        for piece in stream(FIRST_CHUNK, TOTAL):
            yield piece
            sent += len(piece)
            if sent >= KILL_AFTER and not reached.is_set():
                reached.set()
                proceed.wait(60)

    def push() -> None:
        try:
            with httpx.Client(base_url=fresh_server.url, timeout=120) as other:
                outcome["response"] = other.patch(location, content=body())
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    assert reached.wait(60)
    view = StorageView(fresh_server)
    # Kill while the server is writing this request's bytes: some of them are already on disk.
    wait_for(lambda: view.upload_size(upload_id) > FIRST_CHUNK + MiB, timeout=20, interval=0.02)
    client.close()
    fresh_server.kill()
    proceed.set()
    thread.join(60)
    assert "response" not in outcome, outcome
    assert "error" in outcome
    assert FIRST_CHUNK < view.upload_size(upload_id) <= FIRST_CHUNK + sent

    fresh_server.start()
    client = make_client(fresh_server)

    # Nothing of the interrupted blob is visible.
    assert client.head(f"/v2/{repo}/blobs/{blob_digest}").status_code == 404
    assert_blob_tree_clean(fresh_server)

    # The session survived, at a consistent offset: at least the committed chunk, at most what was sent.
    status = client.get(location)
    assert status.status_code == 204
    offset = upload_size(status)
    assert FIRST_CHUNK <= offset <= FIRST_CHUNK + sent

    # Resuming at once, from the reported offset, completes it: the killed request's lease names a process of this
    # machine that is gone, so the restarted server does not wait for it to run out (core.holders).
    response = client.patch(location, content=stream(offset, TOTAL), headers={"Content-Range": f"{offset}-{TOTAL - 1}"})
    assert response.status_code == 202, response.text
    assert upload_size(response) == TOTAL

    # Restarting with a new POST always works.
    other_repo = unique_name("crash")
    response = client.post(f"/v2/{other_repo}/blobs/uploads/")
    assert response.status_code == 202
    restart = response.headers["location"]
    assert upload_size(client.patch(restart, content=stream(0, TOTAL))) == TOTAL
    response = client.put(restart, params={"digest": blob_digest})
    assert response.status_code == 201, response.text
    head = client.head(f"/v2/{other_repo}/blobs/{blob_digest}")
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == TOTAL

    response = client.put(location, params={"digest": blob_digest})
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == blob_digest

    hasher = hashlib.sha256()
    with client.stream("GET", f"/v2/{repo}/blobs/{blob_digest}") as download:
        assert download.status_code == 200
        for data in download.iter_bytes():
            hasher.update(data)
    assert f"sha256:{hasher.hexdigest()}" == blob_digest
    assert client.get(location).status_code == 404
    assert_blob_tree_clean(fresh_server)


def test_kill_during_monolithic_post_leaves_no_blob(
    fresh_server: DockyardServer, make_client: Callable[[DockyardServer], httpx.Client]
) -> None:
    client = make_client(fresh_server)
    repo = unique_name("crash")
    push_blob(client, repo, b"keep me")
    size = 96 * MiB
    digest = digest_of(0, size)
    reached, proceed = threading.Event(), threading.Event()

    def body() -> Iterator[bytes]:
        for index, piece in enumerate(stream(0, size)):
            yield piece
            if index == 48:
                reached.set()
                proceed.wait(60)

    def push() -> None:
        try:
            with httpx.Client(base_url=fresh_server.url, timeout=120) as other:
                other.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=body())
        except httpx.HTTPError:
            pass

    thread = threading.Thread(target=push, daemon=True)
    thread.start()
    assert reached.wait(60)
    view = StorageView(fresh_server)
    wait_for(lambda: any(view.upload_size(u) > 0 for u in view.upload_ids()), timeout=20, interval=0.02)
    client.close()
    fresh_server.kill()
    proceed.set()
    thread.join(60)

    fresh_server.start()
    client = make_client(fresh_server)
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{repo}/blobs/{digest}").json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert_blob_tree_clean(fresh_server)
    assert client.get(f"/v2/{repo}/blobs/sha256:{hashlib.sha256(b'keep me').hexdigest()}").content == b"keep me"
    # Pushing it again works.
    response = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=stream(0, size))
    assert response.status_code == 201, response.text
    assert int(client.head(f"/v2/{repo}/blobs/{digest}").headers["content-length"]) == size


def test_kill_during_manifest_put(
    fresh_server: DockyardServer, make_client: Callable[[DockyardServer], httpx.Client]
) -> None:
    client = make_client(fresh_server)
    repo = unique_name("crash")
    image = push_image(client, repo, "v1")

    config = canonical({"architecture": "arm64", "os": "linux", "crash": True})
    layer = b"layer for the interrupted manifest"
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", config),
        "layers": [descriptor(OCI_LAYER, layer)],
        "annotations": {"pad": "p" * MiB},  # large enough that half of it is clearly mid-request
    }
    body = canonical(doc)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()

    sock = socket.create_connection(("127.0.0.1", fresh_server.port), timeout=10)
    try:
        sock.sendall(
            (
                f"PUT /v2/{repo}/manifests/v2 HTTP/1.1\r\nHost: {fresh_server.host}\r\n"
                f"Content-Type: {OCI_MANIFEST}\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
        )
        sock.sendall(body[: len(body) // 2])
        time.sleep(0.5)  # the server is now waiting for the rest of the body
        client.close()
        fresh_server.kill()
    finally:
        sock.close()

    fresh_server.start()
    client = make_client(fresh_server)
    # The interrupted manifest is absent, everything pushed before is intact.
    response = client.get(f"/v2/{repo}/manifests/v2")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
    assert client.get(f"/v2/{repo}/manifests/{digest}").status_code == 404
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
    assert client.get(f"/v2/{repo}/manifests/v1").content == image.manifest
    assert client.get("/v2/_catalog").json()["repositories"] == [repo]
    assert_blob_tree_clean(fresh_server)

    # Pushing it again works and yields exactly that manifest.
    response = client.put(f"/v2/{repo}/manifests/v2", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    assert client.get(f"/v2/{repo}/manifests/v2").content == body
    assert sorted(client.get(f"/v2/{repo}/tags/list").json()["tags"]) == ["v1", "v2"]
    assert json.loads(client.get(f"/v2/{repo}/manifests/{digest}").content)["annotations"]["pad"] == "p" * MiB


@pytest.mark.parametrize("synchronous", ["normal", "full"])
def test_every_answered_push_survives_sigkill_of_the_whole_server(
    tmp_path: Path, make_client: Callable[[DockyardServer], httpx.Client], synchronous: str
) -> None:
    """Writers keep pushing while the whole process tree is SIGKILLed: every push that was answered 201 before the
    kill (its blobs, manifest and tag; the writes of concurrent units of work, which on SQLite queue on the writer
    and commit in groups) is there after the restart, whatever was in flight — at either durability setting."""
    if synchronous == "full" and backend.is_scaleout():
        pytest.skip("sqlite_synchronous is a setting of the embedded database")
    fresh_server = DockyardServer(tmp_path / "data", env={"DOCKYARD_SQLITE_SYNCHRONOUS": synchronous})
    fresh_server.start()
    try:
        _push_kill_and_check(fresh_server, make_client)
    finally:
        fresh_server.stop()


def _push_kill_and_check(fresh_server: DockyardServer, make_client: Callable[[DockyardServer], httpx.Client]) -> None:
    answered: list[tuple[str, str, str]] = []  # (repository, tag, digest)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(index: int) -> None:
        with httpx.Client(base_url=fresh_server.url, timeout=30) as client:
            number = 0
            while not stop.is_set():
                repo = f"durable/w{index}n{number}"
                try:
                    image = push_image(client, repo, f"t{number}")
                except (httpx.HTTPError, AssertionError):
                    return  # the server is gone: this push may or may not have landed
                with lock:
                    answered.append((repo, f"t{number}", image.digest))
                number += 1

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    wait_for(lambda: len(answered) >= 40, timeout=60, what="pushes answered before the kill")
    fresh_server.kill()
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    with lock:
        survivors = list(answered)

    fresh_server.start()
    client = make_client(fresh_server)
    for repo, tag, digest in survivors:
        response = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert response.status_code == 200, (repo, tag, response.text)
        assert response.headers["docker-content-digest"] == digest
        manifest = response.json()
        for blob in [manifest["config"], *manifest["layers"]]:
            assert client.head(f"/v2/{repo}/blobs/{blob['digest']}").status_code == 200
    assert_blob_tree_clean(fresh_server)
