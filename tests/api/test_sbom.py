"""SBOMs of pushed images through the Hub API (``…/tags/{tag}/sbom``, ``…/manifests/{digest}/sbom``): images made
of hand-built layers — a Debian-like base (dpkg status, os-release as a symlink, a Go-free executable), an upper
layer that replaces the dpkg database and removes a Python distribution with a whiteout, a layer with Node and
Python packages — inventoried in the background after the push; the documents are parsed and validated with
spdx-tools and cyclonedx-python-lib. A malformed package database and a corrupt layer end that image's inventory
(422 with the recorded error) and the server keeps serving."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from spdx_tools.spdx.parser.json import json_parser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tests.support.layers import DEBIAN_12_OS_RELEASE as OS_RELEASE
from tests.support.layers import E, dpkg_status, layer
from tests.support.layers import push_layers as push
from tests.support.oci import OCI_MANIFEST, sha256, unique_name
from tests.support.server import DockyardServer


def _metadata(name: str, version: str) -> bytes:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nDescription\n".encode()


def sbom(client: httpx.Client, repo: str, reference: str, fmt: str = "spdx", *, timeout: float = 60) -> httpx.Response:
    """The SBOM once its inventory is no longer pending (202)."""
    ns, name = repo.split("/", 1)
    kind = "manifests" if reference.startswith("sha256:") else "tags"
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v2/repositories/{ns}/{name}/{kind}/{reference}/sbom", params={"format": fmt})
        if response.status_code != 202 or time.monotonic() > deadline:
            return response
        assert response.headers["retry-after"]
        assert response.json()["type"] == "urn:dockyard:inventory:pending"
        time.sleep(0.2)


def spdx_packages(response: httpx.Response, tmp_path: Path) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/spdx+json"
    path = tmp_path / "sbom.spdx.json"
    path.write_bytes(response.content)
    assert validate_full_spdx_document(json_parser.parse_from_file(str(path))) == []
    document = json.loads(response.content)
    assert document["spdxVersion"] == "SPDX-2.3"
    found = {}
    for package in document["packages"]:
        purls = [r["referenceLocator"] for r in package.get("externalRefs", []) if r["referenceType"] == "purl"]
        if package["SPDXID"].startswith("SPDXRef-Package-"):
            found[purls[0]] = package
    return found


@pytest.fixture
def repo() -> str:
    return unique_name("sbom")


def test_sbom_of_a_layered_image(client: httpx.Client, repo: str, tmp_path: Path) -> None:
    base = layer(
        [
            E("etc/os-release", kind="symlink", link="../usr/lib/os-release"),
            E("usr/lib/os-release", data=OS_RELEASE),
            E(
                "var/lib/dpkg/status",
                data=dpkg_status(("libc6", "2.36-9+deb12u4", "glibc"), ("old-tool", "1.0-1", None)),
            ),
            E("usr/bin/tool", data=b"\x7fELF" + bytes(70_000), mode=0o755),
            E("usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA", data=_metadata("six", "1.16.0")),
            E("usr/lib/python3/dist-packages/gone-1.0.dist-info/METADATA", data=_metadata("gone", "1.0")),
        ]
    )
    upper = layer(
        [
            E(
                "var/lib/dpkg/status",
                data=dpkg_status(
                    ("libc6", "2.36-9+deb12u7", "glibc (2.36-9+deb12u4)"), ("zlib1g", "1:1.2.13.dfsg-1", "zlib")
                ),
            ),
            E("usr/lib/python3/dist-packages/.wh.gone-1.0.dist-info"),
            E("app/node_modules/@types/node/package.json", data=b'{"name": "@types/node", "version": "20.1.0"}'),
            E("app/node_modules/left-pad/package.json", data=b'{"name": "left-pad", "version": "1.3.0"}'),
            E("app/node_modules/left-pad/test/package.json", data=b"{broken"),
        ],
        compression="zstd",
    )
    digest = push(client, repo, "v1", [base, upper])
    response = sbom(client, repo, "v1")
    packages = spdx_packages(response, tmp_path)
    assert response.headers["docker-content-digest"] == digest
    assert set(packages) == {
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12",
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1?arch=amd64&distro=debian-12",
        "pkg:pypi/six@1.16.0",
        "pkg:npm/%40types/node@20.1.0",
        "pkg:npm/left-pad@1.3.0",
    }
    libc = packages["pkg:deb/debian/libc6@2.36-9%2Bdeb12u7?arch=amd64&distro=debian-12"]
    assert libc["versionInfo"] == "2.36-9+deb12u7"
    assert "glibc 2.36-9+deb12u4" in libc["sourceInfo"]
    assert "/var/lib/dpkg/status" in libc["comment"]

    cdx = sbom(client, repo, digest, "cyclonedx")
    assert cdx.status_code == 200, cdx.text
    assert cdx.headers["content-type"] == "application/vnd.cyclonedx+json"
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(cdx.text) is None
    bom = cdx.json()
    assert bom["specVersion"] == "1.6"
    assert bom["metadata"]["component"]["version"] == digest
    components = {c.get("purl", c["name"]): c for c in bom["components"]}
    assert components["debian"]["type"] == "operating-system"
    assert components["debian"]["version"] == "12"
    props = {p["name"]: p["value"] for p in components["pkg:pypi/six@1.16.0"]["properties"]}
    assert props["dockyard:path"] == "/usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA"
    assert len(components) == 6

    # the same SPDX document is attached to the image as an OCI referrer, once, and is not itself inventoried
    referrers = wait_for_referrers(client, repo, digest)
    assert len(referrers) == 1
    assert referrers[0]["artifactType"] == "application/spdx+json"
    manifest = client.get(f"/v2/{repo}/manifests/{referrers[0]['digest']}", headers={"Accept": OCI_MANIFEST})
    assert manifest.status_code == 200
    assert manifest.json()["subject"]["digest"] == digest
    document = client.get(f"/v2/{repo}/blobs/{manifest.json()['layers'][0]['digest']}").json()
    assert document["packages"] == response.json()["packages"]
    ns, name = repo.split("/", 1)
    artifact = client.get(f"/api/v2/repositories/{ns}/{name}/manifests/{referrers[0]['digest']}/sbom")
    assert artifact.status_code == 400, artifact.text
    assert "not a container image" in artifact.json()["detail"]
    rows = 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:  # no inventory (and so no SBOM of the SBOM) is ever made for it
        rows += len(client.get(f"/v2/{repo}/referrers/{referrers[0]['digest']}").json()["manifests"])
        time.sleep(0.5)
    assert rows == 0
    assert len(wait_for_referrers(client, repo, digest)) == 1


def wait_for_referrers(client: httpx.Client, repo: str, digest: str, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        listed = client.get(f"/v2/{repo}/referrers/{digest}", params={"artifactType": "application/spdx+json"})
        assert listed.status_code == 200, listed.text
        if listed.json()["manifests"] or time.monotonic() > deadline:
            return list(listed.json()["manifests"])
        time.sleep(0.2)


def test_a_shared_base_layer_is_inventoried_once(
    client: httpx.Client, server: DockyardServer, repo: str, tmp_path: Path
) -> None:
    base = layer(
        [
            E("lib/apk/db/installed", data=b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\nP:zlib\nV:1.3-r2\nA:x86_64\n"),
            E("etc/os-release", data=b"ID=alpine\nVERSION_ID=3.19.1\n"),
        ]
    )
    push(client, repo, "a", [base])
    assert sbom(client, repo, "a").status_code == 200
    top = layer([E("srv/app.txt", data=b"x")])
    push(client, repo, "b", [base, top])
    packages = spdx_packages(sbom(client, repo, "b"), tmp_path)
    assert set(packages) == {
        "pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=alpine-3.19.1",
        "pkg:apk/alpine/zlib@1.3-r2?arch=x86_64&distro=alpine-3.19.1",
    }
    rows = server.query_sql("SELECT COUNT(*) FROM layer_inventories WHERE layer_digest = :d", d=sha256(base))
    assert rows[0][0] == 1
    releases = server.query_sql(
        "SELECT DISTINCT release, ecosystem FROM image_packages WHERE layer = :d", d=sha256(base)
    )
    assert releases == [("v3.19", "Alpine")]


@pytest.mark.parametrize(
    "blob",
    [
        layer([E("var/lib/dpkg/status", data=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 64)]),
        layer([E("lib/apk/db/installed", data=b"P:" + b"x" * 100_000 + b"\nV:1\n")]),
        b"\x1f\x8b\x08\x00" + b"corrupt gzip" * 100,
    ],
    ids=["junk-dpkg-status", "huge-apk-field", "corrupt-gzip"],
)
def test_unreadable_layers_end_the_inventory_with_an_error(client: httpx.Client, repo: str, blob: bytes) -> None:
    push(client, repo, "bad", [blob])
    response = sbom(client, repo, "bad")
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"] == "urn:dockyard:inventory:failed"
    assert sha256(blob) in problem["detail"]
    # the server keeps serving
    good = layer([E("etc/os-release", data=OS_RELEASE)])
    push(client, repo, "good", [good])
    assert sbom(client, repo, "good").status_code == 200


def test_sbom_errors(client: httpx.Client, repo: str) -> None:
    ns, name = repo.split("/", 1)
    push(client, repo, "v1", [layer([E("etc/hello", data=b"hi")])])
    base = f"/api/v2/repositories/{ns}/{name}"
    assert client.get(f"{base}/tags/v1/sbom", params={"format": "xml"}).status_code == 422
    missing = client.get(f"{base}/tags/nope/sbom")
    assert missing.status_code == 404
    assert missing.json()["subject"] == "tag"
    assert client.get(f"/api/v2/repositories/{ns}/nope-{name}/tags/v1/sbom").status_code == 404
