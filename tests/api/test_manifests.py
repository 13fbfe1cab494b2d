"""Manifests, indexes, artifacts and tags over HTTP: push, negotiate, list, refer, delete."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.oci import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    canonical,
    descriptor,
    error_codes,
    push_blob,
    push_image,
    sha256,
    sha512,
    unique_name,
)


def put(
    client: httpx.Client, repo: str, ref: str, doc: dict[str, Any], media_type: str, params: Any = None
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{ref}", content=canonical(doc), params=params, headers={"Content-Type": media_type}
    )


def index_of(*images: tuple[bytes, str], media_type: str = OCI_INDEX) -> dict[str, Any]:
    child_type = OCI_MANIFEST if media_type == OCI_INDEX else DOCKER_MANIFEST
    return {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            descriptor(child_type, body, platform={"os": "linux", "architecture": arch}) for body, arch in images
        ],
    }


def test_get_head_by_tag_and_digest(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    for ref in ("v1", image.digest):
        got = client.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert got.status_code == 200
        assert got.content == image.manifest
        head = client.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(image.manifest))
        assert head.headers["docker-content-digest"] == image.digest
        assert head.content == b""


def test_docker_schema2_and_manifest_list(client: httpx.Client) -> None:
    repo = unique_name()
    amd = push_image(client, repo, None, media_type=DOCKER_MANIFEST)
    arm = push_image(client, repo, None, media_type=DOCKER_MANIFEST)
    doc = index_of((amd.manifest, "amd64"), (arm.manifest, "arm64"), media_type=DOCKER_LIST)
    response = put(client, repo, "multi", doc, DOCKER_LIST)
    assert response.status_code == 201, response.text
    got = client.get(f"/v2/{repo}/manifests/multi", headers={"Accept": f"{DOCKER_LIST}, {DOCKER_MANIFEST}"})
    assert got.headers["content-type"] == DOCKER_LIST
    assert got.content == canonical(doc)
    # A client that accepts only single manifests is not handed a list.
    only_single = client.get(f"/v2/{repo}/manifests/multi", headers={"Accept": DOCKER_MANIFEST})
    assert only_single.status_code == 404
    assert error_codes(only_single) == ["MANIFEST_UNKNOWN"]


def test_index_requires_its_children(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, None)
    missing = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []})
    doc = index_of((image.manifest, "amd64"), (missing, "arm64"))
    response = put(client, repo, "idx", doc, OCI_INDEX)
    assert response.status_code == 400
    assert error_codes(response) == ["MANIFEST_BLOB_UNKNOWN"]
    assert response.json()["errors"][0]["detail"] == [{"digest": sha256(missing), "kind": "manifest"}]
    assert client.get(f"/v2/{repo}/manifests/idx").status_code == 404


def test_multi_tag_put(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, None)
    response = client.put(
        f"/v2/{repo}/manifests/{image.digest}",
        content=image.manifest,
        params=[("tag", "1.2.3"), ("tag", "1.2"), ("tag", "latest")],
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201
    assert response.headers.get_list("oci-tag") == ["1.2.3", "1.2", "latest"]
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == ["1.2", "1.2.3", "latest"]
    for tag in ("1.2.3", "1.2", "latest"):
        assert client.get(f"/v2/{repo}/manifests/{tag}").headers["docker-content-digest"] == image.digest


def test_sha512_manifest(client: httpx.Client) -> None:
    repo = unique_name()
    config = b'{"sha512":true}'
    layer = b"sha512 layer"
    push_blob(client, repo, config, sha512(config))
    push_blob(client, repo, layer, sha512(layer))
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha512(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": sha512(layer), "size": len(layer)}
        ],
    }
    body = canonical(doc)
    response = client.put(
        f"/v2/{repo}/manifests/{sha512(body)}",
        content=body,
        params={"tag": "s512"},
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == sha512(body)
    got = client.get(f"/v2/{repo}/manifests/{sha512(body)}")
    assert got.content == body
    assert client.get(f"/v2/{repo}/manifests/s512").content == body


def test_referrers(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    empty = b"{}"
    push_blob(client, repo, empty)
    sbom_layer = b'{"sbom":true}'
    push_blob(client, repo, sbom_layer)
    subject = {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.manifest)}
    sbom = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": descriptor(OCI_EMPTY, empty),
        "layers": [descriptor("application/json", sbom_layer)],
        "subject": subject,
        "annotations": {"org.example": "sbom"},
    }
    sig = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.example.sig.config", empty),
        "layers": [],
        "subject": subject,
    }
    for doc in (sbom, sig):
        response = put(client, repo, sha256(canonical(doc)), doc, OCI_MANIFEST)
        assert response.status_code == 201, response.text
        assert response.headers["oci-subject"] == image.digest
    listed = client.get(f"/v2/{repo}/referrers/{image.digest}")
    assert listed.status_code == 200
    assert listed.headers["content-type"] == OCI_INDEX
    manifests = {m["digest"]: m for m in listed.json()["manifests"]}
    assert manifests[sha256(canonical(sbom))] == {
        "mediaType": OCI_MANIFEST,
        "size": len(canonical(sbom)),
        "digest": sha256(canonical(sbom)),
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"org.example": "sbom"},
    }
    assert manifests[sha256(canonical(sig))]["artifactType"] == "application/vnd.example.sig.config"
    filtered = client.get(
        f"/v2/{repo}/referrers/{image.digest}", params={"artifactType": "application/vnd.example.sbom"}
    )
    assert filtered.headers["oci-filters-applied"] == "artifactType"
    assert [m["digest"] for m in filtered.json()["manifests"]] == [sha256(canonical(sbom))]
    none = client.get(f"/v2/{repo}/referrers/{sha256(b'no such subject')}")
    assert none.status_code == 200
    assert none.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    assert client.get(f"/v2/{repo}/referrers/sha256:bad").status_code == 400


def test_subject_may_be_pushed_before_its_target(client: httpx.Client) -> None:
    repo = unique_name()
    empty = b"{}"
    push_blob(client, repo, empty)
    future = sha256(b"a manifest pushed later")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example",
        "config": descriptor(OCI_EMPTY, empty),
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": future, "size": 10},
    }
    response = put(client, repo, sha256(canonical(doc)), doc, OCI_MANIFEST)
    assert response.status_code == 201
    assert response.headers["oci-subject"] == future
    assert len(client.get(f"/v2/{repo}/referrers/{future}").json()["manifests"]) == 1


def test_tag_pagination(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, None)
    tags = sorted(["a", "B", "c1", "c10", "c2", "Z", "_x", "latest"])
    for tag in reversed(tags):  # listed in byte order whatever the order they were pushed in
        assert (
            client.put(
                f"/v2/{repo}/manifests/{tag}", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
            ).status_code
            == 201
        )
    assert client.get(f"/v2/{repo}/tags/list").json() == {"name": repo, "tags": tags}
    seen: list[str] = []
    url = f"/v2/{repo}/tags/list?n=3"
    while url:
        response = client.get(url)
        page = response.json()["tags"]
        assert len(page) <= 3
        seen.extend(page)
        link = response.headers.get("link")
        if link is None:
            break
        assert link.endswith('; rel="next"')
        url = link[1 : link.index(">")]
    assert seen == tags
    assert client.get(f"/v2/{repo}/tags/list", params={"n": 0}).json()["tags"] == []
    assert "link" not in client.get(f"/v2/{repo}/tags/list", params={"n": 0}).headers
    after = client.get(f"/v2/{repo}/tags/list", params={"n": 2, "last": "a"}).json()["tags"]
    assert after == tags[tags.index("a") + 1 : tags.index("a") + 3]
    assert error_codes(client.get(f"/v2/{repo}/tags/list", params={"n": "-1"})) == ["PAGINATION_NUMBER_INVALID"]


def test_catalog_pagination(client: httpx.Client) -> None:
    prefix = unique_name("catalog")
    names = [f"{prefix}/{c}" for c in ("a", "b", "c", "d")]
    for name in names:
        push_blob(client, name, name.encode())
    everything: list[str] = []
    url = "/v2/_catalog?n=2"
    while url:
        response = client.get(url)
        page = response.json()["repositories"]
        assert len(page) <= 2
        everything.extend(page)
        link = response.headers.get("link")
        url = link[1 : link.index(">")] if link else ""
    assert [n for n in everything if n.startswith(prefix)] == names
    assert everything == sorted(everything)


def test_delete_by_tag_untags_and_by_digest_removes(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "keep")
    client.put(f"/v2/{repo}/manifests/drop", content=image.manifest, headers={"Content-Type": OCI_MANIFEST})
    assert client.delete(f"/v2/{repo}/manifests/drop").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/drop").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/keep").status_code == 200
    assert client.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/{image.digest}").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/keep").status_code == 404
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    assert error_codes(client.delete(f"/v2/{repo}/manifests/{image.digest}")) == ["MANIFEST_UNKNOWN"]


def test_manifest_served_through_blob_endpoint(client: httpx.Client) -> None:
    repo = unique_name()
    image = push_image(client, repo, "v1")
    response = client.get(f"/v2/{repo}/blobs/{image.digest}")
    assert response.status_code == 200
    assert response.content == image.manifest


def test_reference_that_cannot_exist_is_unknown_on_get_and_head_and_invalid_on_put(client: httpx.Client) -> None:
    """As distribution (and conformance suite v1.1.1): a syntactically invalid tag names no manifest. (A malformed
    digest stays 400 DIGEST_INVALID, tests/api/test_errors.py.)"""
    repo = unique_name()
    image = push_image(client, repo, "v1")
    for reference in (".INVALID_MANIFEST_NAME", "-bad", "a" * 129):
        got = client.get(f"/v2/{repo}/manifests/{reference}")
        assert got.status_code == 404, reference
        assert error_codes(got) == ["MANIFEST_UNKNOWN"]
        assert client.head(f"/v2/{repo}/manifests/{reference}").status_code == 404
    put = client.put(
        f"/v2/{repo}/manifests/.INVALID_MANIFEST_NAME", content=image.manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert put.status_code == 400
    assert error_codes(put) == ["TAG_INVALID"]
