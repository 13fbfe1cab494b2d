"""End-to-end smoke: the base endpoint and a whole image push/pull over HTTP."""

from __future__ import annotations

import httpx

from tests.support.oci import OCI_MANIFEST, push_image, sha256, unique_name


def test_base_endpoint_advertises_api_version(client: httpx.Client) -> None:
    response = client.get("/v2/")
    assert response.status_code == 200
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def test_push_then_pull_image(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    response = client.get(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert response.status_code == 200
    assert response.content == image.manifest
    assert response.headers["docker-content-digest"] == image.digest
    assert response.headers["content-type"] == OCI_MANIFEST
    blob = client.get(f"/v2/{repo}/blobs/{sha256(image.layers[0])}")
    assert blob.content == image.layers[0]
