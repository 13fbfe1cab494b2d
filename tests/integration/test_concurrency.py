"""Races between clients: the same blob or tag pushed twice at once, a blob DELETE against a manifest PUT that
needs it, and two PATCHes to one upload session."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.oci import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    canonical,
    descriptor,
    push_blob,
    sha256,
    unique_name,
)
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView

MiB = 1024 * 1024
T = TypeVar("T")


def run_together(server: DockyardServer, *actions: Callable[[httpx.Client], T]) -> list[T]:
    """Run each action in its own thread with its own client, released at the same instant."""
    barrier = threading.Barrier(len(actions))

    def run(action: Callable[[httpx.Client], T]) -> T:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            barrier.wait(30)
            return action(c)

    with ThreadPoolExecutor(len(actions)) as pool:
        return [f.result(120) for f in [pool.submit(run, a) for a in actions]]


def chunked_push(repo: str, data: bytes, chunk: int = MiB) -> Callable[[httpx.Client], list[int]]:
    """POST, a PATCH per chunk with Content-Range, closing PUT; returns every status."""

    def push(c: httpx.Client) -> list[int]:
        response = c.post(f"/v2/{repo}/blobs/uploads/")
        statuses = [response.status_code]
        location = response.headers["location"]
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            response = c.patch(location, content=piece, headers={"Content-Range": f"{start}-{start + len(piece) - 1}"})
            statuses.append(response.status_code)
            location = response.headers.get("location", location)
        statuses.append(c.put(location, params={"digest": sha256(data)}).status_code)
        return statuses

    return push


def monolithic_push(repo: str, data: bytes) -> Callable[[httpx.Client], list[int]]:
    def push(c: httpx.Client) -> list[int]:
        response = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        return [response.status_code]

    return push


def assert_blob(client: httpx.Client, repo: str, data: bytes) -> None:
    response = client.get(f"/v2/{repo}/blobs/{sha256(data)}")
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == sha256(data)
    assert hashlib.sha256(response.content).digest() == hashlib.sha256(data).digest()
    assert len(response.content) == len(data)


# -- the same blob --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["monolithic", "chunked", "mixed"])
@pytest.mark.parametrize("same_repo", [True, False], ids=["same-repo", "two-repos"])
def test_same_blob_pushed_twice_at_once(
    server: DockyardServer, client: httpx.Client, how: str, same_repo: bool
) -> None:
    data = os.urandom(12 * MiB)
    repos = [unique_name("race")] * 2 if same_repo else [unique_name("race"), unique_name("race")]
    pushers = {
        "monolithic": [monolithic_push(repos[0], data), monolithic_push(repos[1], data)],
        "chunked": [chunked_push(repos[0], data, 3 * MiB), chunked_push(repos[1], data, 3 * MiB)],
        "mixed": [monolithic_push(repos[0], data), chunked_push(repos[1], data, 4 * MiB)],
    }[how]
    results = run_together(server, *pushers)
    for statuses in results:
        assert statuses[-1] == 201, results
        assert all(s in (201, 202) for s in statuses), results
    for repo in set(repos):
        assert_blob(client, repo, data)
    assert StorageView(server).blobs()[sha256(data)] == len(data)


# -- the same tag ---------------------------------------------------------------------------------------------


def prepared_manifest(client: httpx.Client, repo: str, seed: str) -> bytes:
    config = canonical({"architecture": "amd64", "os": "linux", "seed": seed})
    layer = f"layer {seed}".encode()
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )


def put_manifest(repo: str, reference: str, body: bytes) -> Callable[[httpx.Client], httpx.Response]:
    def put(c: httpx.Client) -> httpx.Response:
        response = c.put(f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": OCI_MANIFEST})
        response.read()
        return response

    return put


def test_same_tag_pushed_twice_at_once(server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name("race")
    winners: Counter[int] = Counter()
    for round_ in range(8):
        one = prepared_manifest(client, repo, f"one-{round_}")
        two = prepared_manifest(client, repo, f"two-{round_}")
        tag = f"t{round_}"
        results = run_together(server, put_manifest(repo, tag, one), put_manifest(repo, tag, two))
        assert [r.status_code for r in results] == [201, 201], [r.text for r in results]
        assert results[0].headers["docker-content-digest"] == sha256(one)
        assert results[1].headers["docker-content-digest"] == sha256(two)
        tagged = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert tagged.status_code == 200
        assert tagged.content in (one, two)
        assert tagged.headers["docker-content-digest"] == sha256(tagged.content)
        winners[0 if tagged.content == one else 1] += 1
        for body in (one, two):
            by_digest = client.get(f"/v2/{repo}/manifests/{sha256(body)}", headers={"Accept": OCI_MANIFEST})
            assert by_digest.status_code == 200
            assert by_digest.content == body
    tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
    assert sorted(tags) == sorted(f"t{i}" for i in range(8))  # each tag listed once
    assert sum(winners.values()) == 8


# -- blob DELETE against manifest PUT ---------------------------------------------------------------------------


def test_blob_delete_racing_manifest_put_ends_consistent(server: DockyardServer, client: httpx.Client) -> None:
    """Observed behaviour: the two are serialised by the database, so either

    * the DELETE went first: the PUT fails with MANIFEST_BLOB_UNKNOWN naming the layer, nothing is stored; or
    * the PUT went first: the manifest is stored (and stays retrievable), then the DELETE unlinks the layer, so
      the repository serves a manifest whose layer GET answers 404 BLOB_UNKNOWN. Like the reference registry,
      a blob DELETE does not check whether manifests still reference the blob.

    The DELETE always succeeds (202): the blob was linked when it started.
    """
    repo = unique_name("race")
    outcomes: Counter[str] = Counter()
    for round_ in range(12):
        config = canonical({"architecture": "amd64", "os": "linux", "round": round_})
        layer = f"contested layer {round_} {os.urandom(8).hex()}".encode()
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, layer)],
            }
        )

        def delete(c: httpx.Client, digest: str = sha256(layer)) -> httpx.Response:
            response = c.delete(f"/v2/{repo}/blobs/{digest}")
            response.read()
            return response

        put, deleted = run_together(server, put_manifest(repo, f"r{round_}", body), delete)
        assert deleted.status_code == 202, deleted.text
        layer_get = client.get(f"/v2/{repo}/blobs/{sha256(layer)}")
        assert layer_get.status_code == 404
        assert layer_get.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        assert client.get(f"/v2/{repo}/blobs/{sha256(config)}").status_code == 200
        manifest = client.get(f"/v2/{repo}/manifests/{sha256(body)}", headers={"Accept": OCI_MANIFEST})
        if put.status_code == 201:
            outcomes["manifest stored, layer then deleted"] += 1
            assert manifest.status_code == 200
            assert manifest.content == body
            assert client.get(f"/v2/{repo}/manifests/r{round_}").content == body
        else:
            outcomes["put refused"] += 1
            assert put.status_code == 400, put.text
            error = put.json()["errors"][0]
            assert error["code"] == "MANIFEST_BLOB_UNKNOWN"
            assert sha256(layer) in json.dumps(error["detail"])
            assert manifest.status_code == 404
            assert manifest.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        # Either way the repository is still usable: re-pushing the layer makes the manifest whole again.
        push_blob(client, repo, layer)
        assert put_manifest(repo, f"r{round_}", body)(client).status_code == 201
        assert client.get(f"/v2/{repo}/blobs/{sha256(layer)}").content == layer
    print(f"blob DELETE vs manifest PUT outcomes: {dict(outcomes)}")  # noqa: T201
    assert sum(outcomes.values()) == 12


# -- two PATCHes to one upload ------------------------------------------------------------------------------


def start_upload(client: httpx.Client, repo: str) -> str:
    response = client.post(f"/v2/{repo}/blobs/uploads/")
    assert response.status_code == 202
    return str(response.headers["location"])


def test_concurrent_patch_to_one_upload_is_refused(server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name("race")
    location = start_upload(client, repo)
    first = os.urandom(6 * MiB)
    second = os.urandom(6 * MiB)
    started, release = threading.Event(), threading.Event()
    result: dict[str, Any] = {}

    def slow_body() -> Iterator[bytes]:
        yield first[:MiB]
        started.set()
        release.wait(30)
        for start in range(MiB, len(first), MiB):
            yield first[start : start + MiB]

    def slow_patch() -> None:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            result["slow"] = c.patch(location, content=slow_body(), headers={"Content-Range": f"0-{len(first) - 1}"})

    thread = threading.Thread(target=slow_patch, daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        time.sleep(0.5)  # the slow request holds the session now
        # A second writer, with the same Content-Range or with none, is refused while the first one writes.
        for headers in ({"Content-Range": f"0-{len(second) - 1}"}, {}):
            response = client.patch(location, content=second, headers=headers)
            assert response.status_code == 409, response.text
            assert response.json()["errors"][0]["code"] == "BLOB_UPLOAD_INVALID"
        response = client.put(location, params={"digest": sha256(second)}, content=second)
        assert response.status_code == 409, response.text
        # Status can still be read, and nothing of the refused bodies is counted.
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["range"] == "0-0"
    finally:
        release.set()
        thread.join(60)
    assert result["slow"].status_code == 202, result["slow"].text
    assert result["slow"].headers["range"] == f"0-{len(first) - 1}"

    # Now that the first chunk is in, the same stale Content-Range is out of order.
    response = client.patch(location, content=second, headers={"Content-Range": f"0-{len(second) - 1}"})
    assert response.status_code == 416
    assert response.json()["errors"][0]["code"] == "RANGE_INVALID"
    assert response.headers["range"] == f"0-{len(first) - 1}"

    assert client.get(location).headers["range"] == f"0-{len(first) - 1}"
    response = client.put(location, params={"digest": sha256(first)})
    assert response.status_code == 201, response.text
    assert_blob(client, repo, first)
    assert client.head(f"/v2/{repo}/blobs/{sha256(second)}").status_code == 404


def test_patches_racing_on_one_upload_never_corrupt_it(server: DockyardServer, client: httpx.Client) -> None:
    """Free-running races: each PATCH either lands whole (202) or is refused (409 lease / 416 offset)."""
    for _ in range(5):
        repo = unique_name("race")
        location = start_upload(client, repo)
        bodies = [os.urandom(2 * MiB + i) for i in range(3)]

        def patch(body: bytes, location: str = location) -> Callable[[httpx.Client], httpx.Response]:
            def run(c: httpx.Client) -> httpx.Response:
                response = c.patch(location, content=body, headers={"Content-Range": f"0-{len(body) - 1}"})
                response.read()
                return response

            return run

        results = run_together(server, *(patch(b) for b in bodies))
        statuses = [r.status_code for r in results]
        assert all(s in (202, 409, 416) for s in statuses), [r.text for r in results]
        assert statuses.count(202) == 1, statuses
        winner = bodies[statuses.index(202)]
        for response in results:
            if response.status_code != 202:
                assert response.json()["errors"][0]["code"] in ("BLOB_UPLOAD_INVALID", "RANGE_INVALID")
        assert client.get(location).headers["range"] == f"0-{len(winner) - 1}"
        response = client.put(location, params={"digest": sha256(winner)})
        assert response.status_code == 201, response.text
        assert_blob(client, repo, winner)
