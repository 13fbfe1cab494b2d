"""Replication to and from a second Dockyard with authentication: the rule's credentials go through the remote's
Docker token flow (401 challenge → ``/v2/token`` with Basic credentials → a bearer token with ``push`` for the
writes), sealed at rest. An OCI referrer (an SBOM whose ``subject`` is the image) travels with its image."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.replication.conftest import add_rule, remote_digest, settled, start_run, wait_run
from tests.support.checks import unique, wait_for
from tests.support.hub import HubAdmin
from tests.support.oci import OCI_EMPTY, OCI_MANIFEST, canonical, descriptor, push_blob, push_image, sha256
from tests.support.server import DockyardServer


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path_factory.mktemp("remote") / "data", secure=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote_client(remote: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=remote.url, auth=("admin", remote.ADMIN_PASSWORD), timeout=60) as client:
        yield client


def _push_sbom(client: httpx.Client, repo: str, subject: str) -> str:
    empty, sbom = b"{}", canonical({"spdxVersion": "SPDX-2.3", "name": unique("sbom")})
    push_blob(client, repo, empty)
    push_blob(client, repo, sbom)
    manifest = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": descriptor(OCI_EMPTY, empty),
            "layers": [descriptor("application/spdx+json", sbom)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 0},
        }
    )
    digest = sha256(manifest)
    put = client.put(f"/v2/{repo}/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    return digest


def _referrers(server: DockyardServer, repo: str, digest: str) -> set[str]:
    response = httpx.get(
        f"{server.url}/v2/{repo}/referrers/{digest}", auth=("admin", server.ADMIN_PASSWORD), timeout=30
    )
    if response.status_code != 200:
        return set()
    return {m["digest"] for m in response.json()["manifests"]}


def test_push_through_the_token_flow_with_a_referrer(
    admin: HubAdmin,
    org: str,
    registry_client: httpx.Client,
    remote: DockyardServer,
    tmp_path: Path,
) -> None:
    target = unique("dst")
    rule = add_rule(
        admin,
        org,
        direction="push",
        remote_url=remote.url,
        remote_namespace=target,  # the remote administrator's push creates the namespace there
        username="admin",
        password=remote.ADMIN_PASSWORD,
        trigger="event",
    )
    assert rule["has_password"] is True
    assert "password" not in rule
    app = unique("app")
    image = push_image(registry_client, f"{org}/{app}", "v1")
    auth = ("admin", remote.ADMIN_PASSWORD)
    wait_for(lambda: remote_digest(remote.url, f"{target}/{app}", "v1", auth), timeout=60, what="image replicated")
    assert remote_digest(remote.url, f"{target}/{app}", "v1", auth) == image.digest
    sbom = _push_sbom(registry_client, f"{org}/{app}", image.digest)
    wait_for(lambda: sbom in _referrers(remote, f"{target}/{app}", image.digest), timeout=60, what="referrer")
    history = settled(admin, org, rule["name"], count=2)
    assert all(run["state"] == "succeeded" for run in history), history
    referrer_run = history[0]
    assert referrer_run["scope"] == {"repository": f"{org}/{app}", "subject": image.digest}


def test_pull_from_a_private_repository_with_credentials(
    admin: HubAdmin, dockyard: DockyardServer, org: str, remote: DockyardServer, remote_client: httpx.Client
) -> None:
    app = unique("private")
    image = push_image(remote_client, f"vault/{app}", "v1")  # the administrator's namespace is private there
    sbom = _push_sbom(remote_client, f"vault/{app}", image.digest)
    anonymous = add_rule(admin, org, direction="pull", remote_url=remote.url, remote_namespace="vault")
    run = wait_run(admin, org, start_run(admin, org, anonymous["name"])["id"], timeout=120)
    # without credentials the remote's catalog shows none of its private repositories: nothing to copy
    assert run["state"] == "succeeded", run
    assert run["results"] == []
    assert remote_digest(dockyard.url, f"{org}/{app}", "v1", ("admin", dockyard.ADMIN_PASSWORD)) is None
    rule = add_rule(
        admin,
        org,
        direction="pull",
        remote_url=remote.url,
        remote_namespace="vault",
        repository_filter=app,
        username="admin",
        password=remote.ADMIN_PASSWORD,
    )
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    assert remote_digest(dockyard.url, f"{org}/{app}", "v1", ("admin", dockyard.ADMIN_PASSWORD)) == image.digest
    assert sbom in _referrers(dockyard, f"{org}/{app}", image.digest)
    assert {(r["destination"], r["result"]) for r in run["results"]} == {
        (f"{org}/{app}:v1", "copied"),
        (f"{org}/{app}@{sbom}", "copied"),
    }
