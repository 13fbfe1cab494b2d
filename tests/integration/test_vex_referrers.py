"""Reading the OpenVEX documents attached to an image (``dockyard.vulns.vexrefs``) on a real database of the test
backend: found by artifact type or by layer media type, scoped to the image and its repository, junk and other
artifacts skipped, each document parsed once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dockyard.vulns.vexrefs import ReferrerVex
from tests.support.hub_services import OCI_MANIFEST, HubEnv, Pushed, canonical, hub_env, sha256

OPENVEX = "application/vnd.openvex+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def _vex(ident: str, vulnerability: str, product: str) -> bytes:
    statement = {"vulnerability": {"name": vulnerability}, "products": [{"@id": product}], "status": "fixed"}
    return canonical({"@context": "https://openvex.dev/ns/v0.2.0", "@id": ident, "statements": [statement]})


async def _attach(env: HubEnv, repo: str, image: Pushed, document: bytes, artifact_type: str, layer_type: str) -> None:
    await env.blob(repo, b"{}")
    await env.blob(repo, document)
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": sha256(b"{}"), "size": 2},
        "layers": [{"mediaType": layer_type, "digest": sha256(document), "size": len(document)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": len(image.body)},
    }
    await env.registry.manifests.put(repo, sha256(canonical(body)), canonical(body), OCI_MANIFEST)


async def test_attached_vex_is_read_for_its_image_only(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        image = await env.push_image("acme/app", "v1")
        other = await env.push_image("acme/app", "v2")
        await _attach(
            env, "acme/app", image, _vex("https://x/1", "CVE-1", "pkg:deb/debian/a"), OPENVEX, "application/json"
        )
        await _attach(
            env, "acme/app", image, _vex("https://x/2", "CVE-2", image.digest), "application/x-other", OPENVEX
        )
        await _attach(env, "acme/app", image, b"not json at all", OPENVEX, OPENVEX)
        await _attach(
            env,
            "acme/app",
            image,
            json.dumps({"spdxVersion": "SPDX-2.3"}).encode(),
            "application/spdx+json",
            "application/spdx+json",
        )
        vex = ReferrerVex(env.registry.blobs)
        async with env.db.read() as conn:
            found = await vex.statements(conn, "acme/app", image.digest)
            assert await vex.statements(conn, "acme/app", other.digest) == []
            assert await vex.statements(conn, "acme/elsewhere", image.digest) == []
        assert sorted((s.vulnerability, s.product, s.status) for s in found) == [
            ("CVE-1", "pkg:deb/debian/a", "fixed"),
            ("CVE-2", image.digest, "fixed"),
        ]
        assert {s.source for s in found} == {
            "OpenVEX https://x/1 attached to the image",
            "OpenVEX https://x/2 attached to the image",
        }
        cached = len(vex._parsed)
        async with env.db.read() as conn:
            assert len(await vex.statements(conn, "acme/app", image.digest)) == 2
        assert len(vex._parsed) == cached == 3  # two documents and the junk one, each parsed once
