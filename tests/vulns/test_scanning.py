"""Vulnerability scanning end to end on a live server, with a test-double inventory (``tests.support
.vuln_inventory``): OSV import through the CLI, reports with exactly the expected findings, a newer import
re-matching only the affected image and recording ``vulnerability.found``, VEX and allowlist suppression (an
expired entry does not suppress), and the vulnerability pull policy (enforce refuses, warn serves with the header
and the event, artifacts stay pullable)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.inventory.model import InstalledPackage
from tests.support.app_server import AppServer
from tests.support.cli import dockyard_cli
from tests.support.oci import OCI_MANIFEST, canonical, descriptor, error_codes, push_blob, push_image, sha256
from tests.support.vuln_inventory import write_inventory
from tests.vulns.osv_fixture import database_v1, database_v2, write_zip

POLICY_HEADER = "X-Dockyard-Vulnerability-Policy"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    srv = AppServer(
        tmp_path_factory.mktemp("vulns") / "data",
        secure=True,
        env={"DOCKYARD_VULNS_INVENTORY_SOURCE": "tests.support.vuln_inventory:FixtureInventory"},
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30, auth=("admin", server.ADMIN_PASSWORD)) as client:
        yield client


def deb(name: str, version: str, layer: str, *, release: str = "12", source: str | None = None) -> InstalledPackage:
    return InstalledPackage(
        "Debian",
        name,
        version,
        f"pkg:deb/debian/{name}@{version}?distro=debian-{release}",
        layer,
        "/var/lib/dpkg/status",
        release=release,
        source_name=source,
    )


def lang(ecosystem: str, name: str, version: str, layer: str) -> InstalledPackage:
    kind = {"PyPI": "pypi", "npm": "npm"}[ecosystem]
    return InstalledPackage(ecosystem, name, version, f"pkg:{kind}/{name.lower()}@{version}", layer, "/x")


def vulndb(server: AppServer, *args: str) -> dict[str, object]:
    env = {**os.environ, **server.env}
    done = dockyard_cli("vulndb", *args, "--data-dir", str(server.data_dir), "--json", env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def report(admin: httpx.Client, repo: str, tag: str) -> dict[str, object]:
    ns, name = repo.split("/", 1)
    response = admin.get(f"/api/v2/repositories/{ns}/{name}/tags/{tag}/vulnerabilities")
    assert response.status_code == 200, response.text
    return dict(response.json())


def ids(body: dict[str, object], *, suppressed: bool | None = None) -> dict[str, tuple[str, str, str | None, str]]:
    findings = body["findings"]
    assert isinstance(findings, list)
    return {
        f["id"]: (f["package"], f["installed_version"], f["fixed_version"], f["severity"])
        for f in findings
        if suppressed is None or (f["suppressed"] is not None) == suppressed
    }


def test_import_match_suppress_and_enforce(server: AppServer, admin: httpx.Client, tmp_path: Path) -> None:
    repo = "admin/app"
    vuln = push_image(admin, repo, "vuln")
    clean = push_image(admin, repo, "clean")
    old = push_image(admin, repo, "bullseye")
    layer = sha256(vuln.layers[0])
    write_inventory(
        server.data_dir,
        {
            vuln.digest: [
                deb("libssl3", "3.0.11-1~deb12u1", layer, source="openssl"),
                deb("zlib1g", "1:1.2.13.dfsg-1", layer, source="zlib"),
                lang("PyPI", "requests", "2.25.0", layer),
                lang("npm", "lodash", "4.17.20", layer),
            ],
            clean.digest: [
                deb("libssl3", "3.0.13-1~deb12u1", layer, source="openssl"),
                lang("PyPI", "requests", "2.32.0", layer),
            ],
            old.digest: [deb("libssl1.1", "1.1.1n-0+deb11u5", layer, release="11", source="openssl")],
        },
    )
    imported = vulndb(server, "import", str(write_zip(tmp_path / "all.zip", database_v1())))
    assert imported["advisories_read"] == 7
    assert imported["changed"] == 7

    found = report(admin, repo, "vuln")
    assert found["scanned"] is True
    assert ids(found) == {
        "DSA-0001-1": ("libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1", "critical"),
        "DEBIAN-CVE-2024-0003": ("zlib1g", "1:1.2.13.dfsg-1", None, "high"),
        "GHSA-aaaa-bbbb-cccc": ("requests", "2.25.0", "2.31.0", "medium"),
    }
    first = found["findings"][0]  # type: ignore[index]
    assert first["aliases"] == ["CVE-2024-0001"]
    assert first["score"] == 9.8
    assert first["layer"] == layer
    assert ids(report(admin, repo, "clean")) == {}
    assert ids(report(admin, repo, "bullseye")) == {
        "DLA-0002-1": ("libssl1.1", "1.1.1n-0+deb11u5", "1.1.1w-0+deb11u1", "critical")
    }
    status = vulndb(server, "status")
    assert status["advisories"] == 7

    # A newer lodash advisory: only the image holding npm lodash is matched again, and it is new and critical.
    # (Images already scanned by the push's job were re-matched by the first import: count events after this.)
    (last_event,) = server.query_sql("SELECT COALESCE(MAX(id), 0) FROM events")[0]
    again = vulndb(server, "import", str(write_zip(tmp_path / "all2.zip", database_v2())))
    assert again["changed"] == 1
    assert again["images_rematched"] == 1
    assert ids(report(admin, repo, "vuln"))["GHSA-dddd-eeee-ffff"] == ("lodash", "4.17.20", "4.17.21", "critical")
    events = server.query_sql("SELECT digest FROM events WHERE type = 'vulnerability.found' AND id > :n", n=last_event)
    assert [row[0] for row in events] == [vuln.digest]

    # VEX not_affected for the image, an allowlist entry, and an expired one.
    vex = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://vex.example/app-1",
        "author": "sec",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2024-0001"},
                "products": [{"@id": f"pkg:oci/app@{vuln.digest}"}],
                "status": "not_affected",
                "justification": "vulnerable_code_not_in_execute_path",
            }
        ],
    }
    assert admin.post("/api/v2/namespaces/admin/vex", json=vex).status_code == 201
    allow = "/api/v2/namespaces/admin/vulnerability-allowlist"
    body = {"vulnerability": "CVE-2024-0003", "reason": "no network use", "expires_at": "2999-01-01T00:00:00Z"}
    assert admin.post(allow, json=body).status_code == 201
    expired = {"vulnerability": "GHSA-aaaa-bbbb-cccc", "reason": "old", "expires_at": "2001-01-01T00:00:00Z"}
    assert admin.post(allow, json=expired).status_code == 201
    shown = report(admin, repo, "vuln")
    assert set(ids(shown, suppressed=True)) == {"DSA-0001-1", "DEBIAN-CVE-2024-0003"}
    assert set(ids(shown, suppressed=False)) == {"GHSA-aaaa-bbbb-cccc", "GHSA-dddd-eeee-ffff"}
    findings = shown["findings"]
    assert isinstance(findings, list)
    reasons = {f["id"]: f["suppressed"] for f in findings}
    assert reasons["DSA-0001-1"]["kind"] == "vex"
    assert "not_affected" in reasons["DSA-0001-1"]["reason"]
    assert reasons["DEBIAN-CVE-2024-0003"] == {"kind": "allowlist", "reason": "no network use"}
    audit = {row[0] for row in server.query_sql("SELECT action FROM audit_log WHERE action LIKE 'vulnerability.%'")}
    assert {"vulnerability.vex.add", "vulnerability.allowlist.add"} <= audit

    # enforce at high: the vulnerable image is refused (its worst unsuppressed finding named), the clean one served
    put = admin.put("/api/v2/namespaces/admin/repositories/app/vulnerability-policy", json={"mode": "enforce"})
    assert put.status_code == 200, put.text
    refused = admin.get(f"/v2/{repo}/manifests/vuln", headers={"Accept": OCI_MANIFEST})
    assert refused.status_code == 403
    assert error_codes(refused) == ["DENIED"]
    message = refused.json()["errors"][0]["message"]
    assert "GHSA-dddd-eeee-ffff" in message
    assert "vulnerability policy of admin/app: enforce at high" in message
    assert admin.get(f"/v2/{repo}/manifests/{vuln.digest}").status_code == 403  # by digest too
    assert admin.get(f"/v2/{repo}/blobs/{vuln.digest}").status_code == 403  # and as a blob
    served = admin.get(f"/v2/{repo}/manifests/clean")
    assert served.status_code == 200
    assert served.headers[POLICY_HEADER] == "pass"
    # an artifact referring to the vulnerable image stays pullable
    config = b"{}"
    push_blob(admin, repo, config)
    sbom = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/spdx+json",
            "config": descriptor("application/vnd.oci.empty.v1+json", config),
            "layers": [descriptor("application/vnd.oci.empty.v1+json", config)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": vuln.digest, "size": len(vuln.manifest)},
        }
    )
    assert (
        admin.put(f"/v2/{repo}/manifests/sbom", content=sbom, headers={"Content-Type": OCI_MANIFEST}).status_code == 201
    )
    assert admin.get(f"/v2/{repo}/manifests/sbom").status_code == 200

    # warn: served with the header, and a policy_violation event naming the vulnerability policy
    assert (
        admin.put("/api/v2/namespaces/admin/repositories/app/vulnerability-policy", json={"mode": "warn"}).status_code
        == 200
    )
    warned = admin.get(f"/v2/{repo}/manifests/vuln")
    assert warned.status_code == 200
    assert warned.headers[POLICY_HEADER].startswith("warn; GHSA-dddd-eeee-ffff")
    rows = server.query_sql("SELECT payload FROM events WHERE type = 'policy.violated' AND digest = :d", d=vuln.digest)
    modes = {json.loads(row[0])["mode"] for row in rows if json.loads(row[0]).get("policy") == "vulnerability"}
    assert modes == {"enforce", "warn"}


def test_report_is_a_pull(server: AppServer, admin: httpx.Client) -> None:
    created = admin.post("/api/v2/namespaces/admin/repositories", json={"name": "hidden", "is_private": True})
    assert created.status_code == 201, created.text
    push_image(admin, "admin/hidden", "v1")
    with httpx.Client(base_url=server.url) as anonymous:
        assert anonymous.get("/api/v2/repositories/admin/hidden/tags/v1/vulnerabilities").status_code == 404
    assert report(admin, "admin/hidden", "v1")["scanned"] is False  # no inventory for it: unscanned, not an error


def attach_vex(
    admin: httpx.Client, repo: str, subject: Any, document: bytes, *, artifact_type: str, layer_type: str
) -> str:
    """Push ``document`` as an OCI referrer of image ``subject`` (as ``oras attach`` would); the referrer's digest."""
    config = b"{}"
    push_blob(admin, repo, config)
    push_blob(admin, repo, document)
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": descriptor("application/vnd.oci.empty.v1+json", config),
            "layers": [descriptor(layer_type, document)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.manifest)},
        }
    )
    digest = sha256(body)
    put = admin.put(f"/v2/{repo}/manifests/{digest}", content=body, headers={"Content-Type": OCI_MANIFEST})
    assert put.status_code == 201, put.text
    return digest


def openvex(ident: str, statements: list[dict[str, Any]]) -> bytes:
    return canonical(
        {
            "@context": "https://openvex.dev/ns/v0.2.0",
            "@id": ident,
            "author": "the image's maintainers",
            "timestamp": "2026-02-01T00:00:00Z",
            "version": 1,
            "statements": statements,
        }
    )


def test_vex_attached_to_an_image_suppresses_its_findings_only(
    server: AppServer, admin: httpx.Client, tmp_path: Path
) -> None:
    repo = "admin/vexed"
    image = push_image(admin, repo, "attached")
    twin = push_image(admin, repo, "twin")  # the same packages, no VEX of its own
    layer = sha256(image.layers[0])
    packages = [deb("libssl3", "3.0.11-1~deb12u1", layer, source="openssl"), lang("PyPI", "requests", "2.25.0", layer)]
    write_inventory(server.data_dir, {image.digest: packages, twin.digest: packages})
    vulndb(server, "import", str(write_zip(tmp_path / "all.zip", database_v1())))
    assert set(ids(report(admin, repo, "attached"), suppressed=False)) == {"DSA-0001-1", "GHSA-aaaa-bbbb-cccc"}

    # an OpenVEX artifact (artifactType and layer typed OpenVEX), naming the package by purl without a version
    attach_vex(
        admin,
        repo,
        image,
        openvex(
            "https://vex.example/vexed-1",
            [
                {
                    "vulnerability": {"name": "CVE-2024-0001"},
                    "products": [{"@id": "pkg:deb/debian/libssl3"}],
                    "status": "not_affected",
                    "justification": "vulnerable_code_not_in_execute_path",
                }
            ],
        ),
        artifact_type="application/vnd.openvex+json",
        layer_type="application/vnd.openvex+json",
    )
    # another artifact type whose layer is an OpenVEX document, naming the image itself
    attach_vex(
        admin,
        repo,
        image,
        openvex(
            "https://vex.example/vexed-2",
            [
                {
                    "vulnerability": {"name": "GHSA-aaaa-bbbb-cccc"},
                    "products": [{"@id": f"pkg:oci/vexed@{image.digest}"}],
                    "status": "fixed",
                }
            ],
        ),
        artifact_type="application/vnd.example.attestations",
        layer_type="application/vnd.openvex+json",
    )
    # junk attached as OpenVEX is skipped: the report still answers
    attach_vex(
        admin,
        repo,
        image,
        b'{"@context": "not vex", "statements": 7}',
        artifact_type="application/vnd.openvex+json",
        layer_type="application/json",
    )
    shown = report(admin, repo, "attached")
    findings = shown["findings"]
    assert isinstance(findings, list)
    reasons = {f["id"]: f["suppressed"] for f in findings}
    assert reasons["DSA-0001-1"]["kind"] == "vex"
    assert reasons["DSA-0001-1"]["reason"] == (
        "not_affected: vulnerable_code_not_in_execute_path (OpenVEX https://vex.example/vexed-1 attached to the image)"
    )
    assert reasons["GHSA-aaaa-bbbb-cccc"]["kind"] == "vex"
    assert reasons["GHSA-aaaa-bbbb-cccc"]["reason"].startswith("fixed (OpenVEX https://vex.example/vexed-2")
    assert shown["suppressed"] == 2
    # the same packages in another image: the attached documents do not apply to it
    assert set(ids(report(admin, repo, "twin"), suppressed=False)) == {"DSA-0001-1", "GHSA-aaaa-bbbb-cccc"}

    # and the pull policy honours them: enforce at high serves the image its VEX clears and refuses its twin
    policy = f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/vulnerability-policy"
    assert admin.put(policy, json={"mode": "enforce", "severity": "medium"}).status_code == 200
    assert admin.get(f"/v2/{repo}/manifests/attached").status_code == 200
    refused = admin.get(f"/v2/{repo}/manifests/twin")
    assert refused.status_code == 403
    assert "DSA-0001-1" in refused.json()["errors"][0]["message"]
