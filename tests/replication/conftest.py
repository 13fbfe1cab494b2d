"""Fixtures for the replication tests: a secure Dockyard whose administrator owns the organizations that hold the
rules (remote registries on loopback allowed, failed runs retried after one second, schedules checked every
second), real remote registries — Debian's ``docker-registry`` (``tests/proxy/conftest.py``'s ``ReferenceRegistry``)
and, in ``test_token_remote.py``, a second Dockyard with authentication — and helpers that push images over HTTP
and wait for runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.proxy.conftest import ReferenceRegistry
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.oci import OCI_INDEX, OCI_MANIFEST, PushedImage, canonical, push_image, sha256
from tests.support.server import DockyardServer

REPLICATION_ENV = {
    "DOCKYARD_REPLICATION_ALLOWED_HOSTS": "127.0.0.1",
    "DOCKYARD_REPLICATION_RETRY_SECONDS": "1",
    "DOCKYARD_REPLICATION_MAX_ATTEMPTS": "10",  # room for a restarted destination on a loaded machine
    "DOCKYARD_REPLICATION_SCHEDULE_CHECK_SECONDS": "1",
}


@pytest.fixture(scope="module")
def dockyard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    root = tmp_path_factory.mktemp("replication")
    server = DockyardServer(root / "data", secure=True, env=dict(REPLICATION_ENV))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(dockyard: DockyardServer) -> Iterator[HubAdmin]:
    hub = HubAdmin(dockyard)
    yield hub
    hub.close()


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[ReferenceRegistry]:
    workdir = tmp_path / "reference"
    workdir.mkdir()
    registry = ReferenceRegistry(workdir)
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture
def org(admin: HubAdmin) -> str:
    return admin.org("admin", "rep")


@pytest.fixture(scope="module")
def registry_client(dockyard: DockyardServer) -> Iterator[httpx.Client]:
    """``/v2`` of the Dockyard as its administrator."""
    with httpx.Client(base_url=dockyard.url, auth=("admin", dockyard.ADMIN_PASSWORD), timeout=60) as client:
        yield client


def add_rule(hub: HubAdmin, namespace: str, **body: Any) -> dict[str, Any]:
    body.setdefault("name", unique("rule"))
    response = hub.client.post(f"/api/v2/namespaces/{namespace}/replication/rules", json=body)
    assert response.status_code == 201, response.text
    rule: dict[str, Any] = response.json()
    return rule


def runs(hub: HubAdmin, namespace: str, rule: str) -> list[dict[str, Any]]:
    response = hub.client.get(f"/api/v2/namespaces/{namespace}/replication/rules/{rule}/runs")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["results"]
    return found


def run_detail(hub: HubAdmin, namespace: str, run_id: int) -> dict[str, Any]:
    response = hub.client.get(f"/api/v2/namespaces/{namespace}/replication/runs/{run_id}")
    assert response.status_code == 200, response.text
    detail: dict[str, Any] = response.json()
    return detail


def settled(hub: HubAdmin, namespace: str, rule: str, *, count: int = 1, timeout: float = 60) -> list[dict[str, Any]]:
    """The rule's runs once at least ``count`` exist and every one has ended (newest first)."""
    deadline = time.monotonic() + timeout
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = runs(hub, namespace, rule)
        if len(found) >= count and all(run["state"] in ("succeeded", "failed") for run in found):
            return found
        time.sleep(0.3)
    raise AssertionError(f"runs of {rule} did not end: {found}")


def start_run(hub: HubAdmin, namespace: str, rule: str) -> dict[str, Any]:
    response = hub.client.post(f"/api/v2/namespaces/{namespace}/replication/rules/{rule}/runs")
    assert response.status_code == 201, response.text
    run: dict[str, Any] = response.json()
    return run


def wait_run(hub: HubAdmin, namespace: str, run_id: int, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    detail: dict[str, Any] = {}
    while time.monotonic() < deadline:
        detail = run_detail(hub, namespace, run_id)
        if detail["state"] in ("succeeded", "failed"):
            return detail
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} did not end: {detail}")


def push_index(
    client: httpx.Client, repo: str, tag: str, seeds: tuple[str, ...] = ("amd64", "arm64")
) -> tuple[str, list[str]]:
    """Push one image per seed (by digest) and an OCI index of them at ``tag``; the index's and children's digests."""
    children: list[PushedImage] = [push_image(client, repo, None, seed=f"{unique('s')}-{seed}") for seed in seeds]
    index = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": child.digest,
                    "size": len(child.manifest),
                    "platform": {"os": "linux", "architecture": seed},
                }
                for child, seed in zip(children, seeds, strict=True)
            ],
        }
    )
    put = client.put(f"/v2/{repo}/manifests/{tag}", content=index, headers={"Content-Type": OCI_INDEX})
    assert put.status_code == 201, put.text
    return sha256(index), [child.digest for child in children]


def remote_digest(url: str, repo: str, reference: str, auth: tuple[str, str] | None = None) -> str | None:
    """The digest a registry serves for ``repo:reference`` (None: 404)."""
    accept = ", ".join([OCI_INDEX, OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"])
    response = httpx.head(f"{url}/v2/{repo}/manifests/{reference}", headers={"Accept": accept}, auth=auth, timeout=30)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, (response.status_code, response.text)
    return response.headers["docker-content-digest"]


class TwoStepUploads(httpx.Client):
    """An ``httpx.Client`` for registries without single-POST uploads (distribution answers them 202): a POST with
    ``?digest=`` becomes POST (open) + PUT (close with the bytes), so ``tests.support.oci.push_image`` works."""

    def post(self, url: Any, **kwargs: Any) -> httpx.Response:
        params = kwargs.get("params") or {}
        if "/blobs/uploads/" not in str(url) or "digest" not in params or "mount" in params:
            return super().post(url, **kwargs)
        opened = super().post(url)
        assert opened.status_code == 202, opened.text
        location = opened.headers["location"]
        return self.put(
            location + ("&" if "?" in location else "?") + "digest=" + quote(str(params["digest"])),
            content=kwargs.get("content"),
            headers={"Content-Type": "application/octet-stream"},
        )
