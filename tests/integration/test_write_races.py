"""Writers racing on the same rows never get a 500: the same manifest pushed by many clients into a repository
that does not exist yet, deletes of a manifest racing pushes of it, replicas migrating one empty database.

On SQLite writers queue on the database lock; on PostgreSQL (the scale-out run) they really run side by side,
and these races once ended in unique violations and deadlocks.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256, unique_name
from tests.support.server import DockyardServer

T = TypeVar("T")
CLIENTS = 8


def together(server: DockyardServer, count: int, action: Callable[[httpx.Client, int], T]) -> list[T]:
    """Run ``action(client, i)`` for i in range(count), each on its own thread and client, released at once."""
    barrier = threading.Barrier(count)

    def run(i: int) -> T:
        with httpx.Client(base_url=server.url, timeout=120) as c:
            barrier.wait(30)
            return action(c, i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def no_server_errors(responses: list[httpx.Response]) -> None:
    errors = [
        (r.request.method, r.request.url.path, r.status_code, r.text[:300]) for r in responses if r.status_code >= 500
    ]
    assert not errors, errors


def image(seed: str) -> tuple[bytes, bytes, bytes]:
    config = canonical({"architecture": "amd64", "os": "linux", "seed": seed})
    layer = os.urandom(1024)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(OCI_LAYER, layer)],
        }
    )
    return config, layer, manifest


def push_into_new_repository(
    repo: str, source: str, config: bytes, layer: bytes, manifest: bytes
) -> Callable[[httpx.Client, int], list[httpx.Response]]:
    """Create the repository by mounting (and uploading), then push one manifest under shared and own tags."""

    def push(c: httpx.Client, i: int) -> list[httpx.Response]:
        responses = [
            c.post(f"/v2/{repo}/blobs/uploads/", params={"mount": sha256(config), "from": source}),
            c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(layer)}, content=layer),
        ]
        for tag in ("latest", f"own-{i}", sha256(manifest)):
            responses.append(
                c.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            )
        return responses

    return push


def push_or_delete(repo: str, manifest: bytes) -> Callable[[httpx.Client, int], list[httpx.Response]]:
    """Odd clients delete the manifest (by digest) and a tag; even ones push it under ``latest`` and that tag."""

    def act(c: httpx.Client, i: int) -> list[httpx.Response]:
        if i % 2:
            return [c.delete(f"/v2/{repo}/manifests/{sha256(manifest)}"), c.delete(f"/v2/{repo}/manifests/t{i}")]
        return [
            c.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
            for tag in ("latest", f"t{i + 1}")
        ]

    return act


def test_same_manifest_pushed_at_once_into_a_new_repository(server: DockyardServer, client: httpx.Client) -> None:
    for round_ in range(3):
        source, repo = unique_name("races"), unique_name("races")
        config, layer, manifest = image(f"same-{round_}")
        push_blob(client, source, config)
        push_blob(client, source, layer)
        push = push_into_new_repository(repo, source, config, layer, manifest)
        responses = [r for rs in together(server, CLIENTS, push) for r in rs]
        no_server_errors(responses)
        assert all(r.status_code == 201 for r in responses), [(r.status_code, r.text[:200]) for r in responses]
        tags = client.get(f"/v2/{repo}/tags/list").json()["tags"]
        assert tags == sorted(["latest", *(f"own-{i}" for i in range(CLIENTS))])
        assert client.get(f"/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST}).content == manifest


def test_deletes_of_a_manifest_racing_pushes_of_it(server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name("races")
    for round_ in range(3):
        config, layer, manifest = image(f"delete-{round_}")
        push_blob(client, repo, config)
        push_blob(client, repo, layer)
        responses = [r for rs in together(server, CLIENTS, push_or_delete(repo, manifest)) for r in rs]
        no_server_errors(responses)
        assert {r.status_code for r in responses} <= {201, 202, 404}, [(r.status_code, r.text) for r in responses]
        # Consistent afterwards: every listed tag resolves to the manifest.
        for tag in client.get(f"/v2/{repo}/tags/list").json()["tags"] or []:
            got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert got.status_code == 200, (tag, got.text)
            assert sha256(got.content) == got.headers["docker-content-digest"]


def test_multi_tag_pushes_in_opposite_orders_and_deletes(server: DockyardServer, client: httpx.Client) -> None:
    """Pushes that move the same tags (``?tag=`` in opposite orders) onto different manifests, while the manifests
    those tags leave are deleted: writers lock tag rows in one order, so none deadlocks."""
    repo = unique_name("races")
    tags = [f"t{n}" for n in range(6)]
    images = [image(f"multi-{n}") for n in range(CLIENTS)]
    for config, layer, _ in images:
        push_blob(client, repo, config)
        push_blob(client, repo, layer)

    def act(c: httpx.Client, i: int) -> list[httpx.Response]:
        manifest = images[i][2]
        order = tags if i % 2 else tags[::-1]
        responses = []
        for _ in range(3):
            responses.append(
                c.put(
                    f"/v2/{repo}/manifests/{sha256(manifest)}",
                    content=manifest,
                    params=[("tag", t) for t in order],
                    headers={"Content-Type": OCI_MANIFEST},
                )
            )
            responses.append(c.delete(f"/v2/{repo}/manifests/{sha256(images[(i + 1) % CLIENTS][2])}"))
        return responses

    responses = [r for rs in together(server, CLIENTS, act) for r in rs]
    no_server_errors(responses)
    assert {r.status_code for r in responses} <= {201, 202, 404}, [(r.status_code, r.text) for r in responses]
    for tag in client.get(f"/v2/{repo}/tags/list").json()["tags"] or []:
        got = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200, (tag, got.text)


def test_replicas_starting_together_on_an_empty_database(tmp_path: Path) -> None:
    """Each replica migrates on start; started at the same instant over one (new) database, all come up."""
    replicas = [DockyardServer(tmp_path / "shared", migrated=False) for _ in range(2)]
    errors: list[BaseException] = []

    def start(srv: DockyardServer) -> None:
        try:
            srv.start(timeout=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(srv,)) for srv in replicas]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        repo = unique_name("races")
        with httpx.Client(base_url=replicas[0].url) as c:
            push_blob(c, repo, b"shared")
        for srv in replicas:
            assert httpx.get(f"{srv.url}/v2/{repo}/blobs/{sha256(b'shared')}").content == b"shared"
    finally:
        for srv in replicas:
            srv.stop()
