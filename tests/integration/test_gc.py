"""Online garbage collection: what is collected, what is kept, dry runs, and pushes racing a collection."""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

import httpx

from tests.support.cli import dockyard_cli
from tests.support.oci import (
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    push_blob,
    push_image,
    sha256,
    unique_name,
)
from tests.support.server import DockyardServer
from tests.support.storage_view import StorageView


def gc(server: DockyardServer, *args: str) -> tuple[dict[str, Any], list[str]]:
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env}
    result = dockyard_cli("gc", "--verbose", *args, env=env)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]), lines[:-1]


def test_collects_unreferenced_and_keeps_the_rest(fresh_server: DockyardServer) -> None:
    with httpx.Client(base_url=fresh_server.url) as client:
        _collects_unreferenced_and_keeps_the_rest(fresh_server, client)


def _collects_unreferenced_and_keeps_the_rest(fresh_server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name()
    kept = push_image(client, repo, "kept")
    dropped = push_image(client, repo, "dropped")
    # An index keeps its untagged children; a referrer is kept while its subject exists.
    child = push_image(client, repo, None)
    index = canonical(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [descriptor(OCI_MANIFEST, child.manifest)]}
    )
    assert (
        client.put(f"/v2/{repo}/manifests/idx", content=index, headers={"Content-Type": OCI_INDEX}).status_code == 201
    )
    empty = push_blob(client, repo, b"{}")
    referrer = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/x-sig",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, kept.manifest),
        }
    )
    assert (
        client.put(
            f"/v2/{repo}/manifests/{sha256(referrer)}", content=referrer, headers={"Content-Type": OCI_MANIFEST}
        ).status_code
        == 201
    )
    stray = push_blob(client, repo, b"uploaded but never used")
    assert client.delete(f"/v2/{repo}/manifests/dropped").status_code == 202

    summary, listed = gc(fresh_server, "--dry-run", "--grace-seconds", "0")
    assert summary["dry_run"] is True
    assert f"manifest {repo}@{dropped.digest}" in listed
    assert summary["manifests"] == 1
    assert client.get(f"/v2/{repo}/manifests/{dropped.digest}").status_code == 200  # dry run deleted nothing

    assert gc(fresh_server)[0]["manifests"] == 0  # default grace (24 h) protects fresh content

    summary, listed = gc(fresh_server, "--grace-seconds", "0")
    assert summary["manifests"] == 1
    assert summary["blobs"] >= 3  # dropped's config and layer, the stray blob
    assert summary["bytes_freed"] > 0
    assert client.get(f"/v2/{repo}/manifests/{dropped.digest}").status_code == 404
    for layer in dropped.layers:
        assert client.head(f"/v2/{repo}/blobs/{sha256(layer)}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{stray}").status_code == 404
    assert sha256(dropped.layers[0]) not in StorageView(fresh_server).blobs()
    for image in (kept, child):
        assert client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 200
        assert client.get(f"/v2/{repo}/blobs/{sha256(image.layers[0])}").content == image.layers[0]
    assert client.get(f"/v2/{repo}/manifests/{sha256(referrer)}").status_code == 200
    assert client.get(f"/v2/{repo}/manifests/idx").status_code == 200
    # Nothing left to collect: a second run frees nothing.
    assert gc(fresh_server, "--grace-seconds", "0")[0]["blobs"] == 0


def test_abandoned_uploads_expire(fresh_server: DockyardServer) -> None:
    with httpx.Client(base_url=fresh_server.url) as client:
        _abandoned_uploads_expire(fresh_server, client)


def _abandoned_uploads_expire(fresh_server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name()
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    assert client.patch(location, content=b"partial").status_code == 202
    fresh_server.env["DOCKYARD_UPLOAD_EXPIRY_SECONDS"] = "60"
    assert gc(fresh_server, "--grace-seconds", "0")[0]["uploads"] == 0  # younger than the expiry
    assert client.get(location).status_code == 204  # the session is still there after a collection
    # Age the session instead of sleeping: pretend it was last touched long ago.
    aged = fresh_server.execute_sql("UPDATE uploads SET updated_at = '2000-01-01 00:00:00.000000'")
    # (Seen once in CI under load: 0 rows. Say what the server and its database held, to find out why.)
    held = fresh_server.query_sql("SELECT id, repository, updated_at FROM uploads")
    assert aged == 1, (held, fresh_server.log_tail())
    assert gc(fresh_server, "--grace-seconds", "0")[0]["uploads"] == 1
    assert client.get(location).status_code == 404


def test_pushes_racing_gc_with_zero_grace_lose_nothing(fresh_server: DockyardServer) -> None:
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        _pushes_racing_gc(fresh_server, client)


def _pushes_racing_gc(fresh_server: DockyardServer, client: httpx.Client) -> None:
    repo = unique_name()
    shared_layers = [os.urandom(20_000) for _ in range(4)]
    for layer in shared_layers:
        push_blob(client, repo, layer)
    pushed: list[tuple[str, str, list[bytes]]] = []
    failures: list[str] = []
    stop = threading.Event()

    def pusher(worker: int) -> None:
        with httpx.Client(base_url=fresh_server.url, timeout=60) as c:
            for i in range(12):
                tag = f"w{worker}-{i}"
                layers = [shared_layers[(worker + i) % 4], os.urandom(1000)]
                for layer in layers:
                    # As real clients do: skip blobs the registry says it has.
                    if c.head(f"/v2/{repo}/blobs/{sha256(layer)}").status_code != 200:
                        push_blob(c, repo, layer)
                config = canonical({"w": worker, "i": i})
                push_blob(c, repo, config)
                doc = {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": descriptor("application/vnd.oci.image.config.v1+json", config),
                    "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer) for layer in layers],
                }
                response = c.put(
                    f"/v2/{repo}/manifests/{tag}", content=canonical(doc), headers={"Content-Type": OCI_MANIFEST}
                )
                if response.status_code != 201:
                    failures.append(f"{tag}: {response.status_code} {response.text[:200]}")
                elif i % 2:
                    # Make garbage as we go: every other image is untagged again right away.
                    assert c.delete(f"/v2/{repo}/manifests/{tag}").status_code == 202
                else:
                    pushed.append((tag, response.headers["docker-content-digest"], [config, *layers]))

    def collector() -> None:
        while not stop.is_set():
            gc(fresh_server, "--grace-seconds", "0")
            time.sleep(0.05)

    gc_thread = threading.Thread(target=collector)
    gc_thread.start()
    workers = [threading.Thread(target=pusher, args=(w,)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    gc_thread.join()
    gc(fresh_server, "--grace-seconds", "0")

    assert pushed, failures
    for tag, digest, blobs in pushed:
        manifest = client.get(f"/v2/{repo}/manifests/{tag}")
        assert manifest.status_code == 200, tag
        assert manifest.headers["docker-content-digest"] == digest
        for blob in blobs:
            response = client.get(f"/v2/{repo}/blobs/{sha256(blob)}")
            assert response.status_code == 200, (tag, sha256(blob))
            assert sha256(response.content) == sha256(blob)
    # A push may be refused (MANIFEST_BLOB_UNKNOWN) when GC removed a blob link between the client's HEAD and its
    # manifest PUT with a zero grace period; it is never accepted and then broken.
    for failure in failures:
        assert "MANIFEST_BLOB_UNKNOWN" in failure, failure
