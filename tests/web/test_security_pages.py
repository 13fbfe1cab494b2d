"""The tag's security page in a real browser: an image with a Debian package database, an OSV database imported
through the CLI, and the page listing exactly the findings the scanner matches (severity, installed and fixed
versions, newest-fix-less ones said so), the packages of the inventory, and SBOM downloads that are real SPDX and
CycloneDX documents. A private repository's security page and SBOM are a 404 to who may not pull it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.layers import DEBIAN_12_OS_RELEASE, E, dpkg_status, layer, push_layers
from tests.vulns.osv_fixture import database_v1, write_zip
from tests.vulns.test_scanning import vulndb
from tests.web.conftest import shot
from tests.web.pages import assert_inert, sign_in, watch_scripts


@dataclass(frozen=True)
class Scanned:
    user: str
    password: str
    repo: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    srv = AppServer(tmp_path_factory.mktemp("security-pages") / "data", secure=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def scanned(server: AppServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scanned]:
    hub = HubAdmin(server)
    user, password = hub.user("scan")
    repo = f"{user}/app"
    base = layer(
        [
            E("etc/os-release", data=DEBIAN_12_OS_RELEASE),
            E(
                "var/lib/dpkg/status",
                data=dpkg_status(("libssl3", "3.0.11-1~deb12u1", "openssl"), ("zlib1g", "1:1.2.13.dfsg-1", "zlib")),
            ),
        ]
    )
    with httpx.Client(base_url=server.url, timeout=30, auth=(user, password)) as client:
        push_layers(client, repo, "v1", [base])
        deadline = time.monotonic() + 60
        while client.get(f"/api/v2/repositories/{repo}/tags/v1/sbom").status_code != 200:
            assert time.monotonic() < deadline, "the inventory was not computed within 60 s"
            time.sleep(0.2)
    vulndb(server, "import", str(write_zip(tmp_path_factory.mktemp("osv") / "all.zip", database_v1())))
    yield Scanned(user, password, repo)
    hub.close()


def test_findings_packages_and_sbom_downloads(
    browser_context_factory: Any, server: AppServer, scanned: Scanned
) -> None:
    page = browser_context_factory().new_page()
    dialogs = watch_scripts(page)
    sign_in(page, server, scanned.user, scanned.password)
    page.goto(f"{server.url}/r/{scanned.repo}/tags/v1")
    page.click("[data-testid=security-link]")
    page.wait_for_selector("[data-testid=findings]")

    rows = [
        [cell.inner_text().strip() for cell in row.locator("td").all()]
        for row in page.locator("[data-testid=finding]").all()
    ]
    assert [(r[0].split()[0], r[1].split()[0], r[2].split()[0], r[3], r[4]) for r in rows] == [
        ("DSA-0001-1", "critical", "libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1"),
        ("DEBIAN-CVE-2024-0003", "high", "zlib1g", "1:1.2.13.dfsg-1", "no fix yet"),
    ]
    assert "CVE-2024-0001" in rows[0][0]
    assert "9.8" in rows[0][1]
    summary = page.inner_text("[data-testid=severity-summary]")
    assert "1 critical" in summary
    assert "1 high" in summary
    assert "0 medium" in summary
    packages = page.inner_text("[data-testid=package-list]")
    assert "libssl3" in packages
    assert "zlib1g" in packages
    assert "/var/lib/dpkg/status" in packages
    assert_inert(page, server, "security page")
    shot(page, "tag-security", phone=True)

    spdx = page.request.get(server.url + str(page.get_attribute("[data-testid=sbom-spdx]", "href")))
    assert spdx.status == 200
    assert spdx.headers["content-type"] == "application/spdx+json"
    assert spdx.headers["content-disposition"].startswith('attachment; filename="app-v1-')
    document = json.loads(spdx.body())
    assert document["spdxVersion"] == "SPDX-2.3"
    names = {p["name"] for p in document["packages"]}
    assert {"libssl3", "zlib1g"} <= names
    cyclonedx = page.request.get(server.url + str(page.get_attribute("[data-testid=sbom-cyclonedx]", "href")))
    assert cyclonedx.status == 200
    assert json.loads(cyclonedx.body())["specVersion"] == "1.6"
    assert dialogs == []


def test_a_private_repository_s_security_page_is_hidden(
    browser_context_factory: Any, server: AppServer, scanned: Scanned, tmp_path: Path
) -> None:
    hub = HubAdmin(server)
    try:
        hub.set_visibility(scanned.repo, private=True)
        with httpx.Client(base_url=server.url, timeout=30) as anonymous:
            for path in ("security", "sbom?format=spdx"):
                response = anonymous.get(f"/r/{scanned.repo}/tags/v1/{path}")
                assert response.status_code == 404, (path, response.text[:200])
                assert "libssl3" not in response.text
        page = browser_context_factory().new_page()
        sign_in(page, server, scanned.user, scanned.password)
        page.goto(f"{server.url}/r/{scanned.repo}/tags/v1/security")
        assert page.locator("[data-testid=finding]").count() == 2  # the owner still sees it
    finally:
        hub.set_visibility(scanned.repo, private=False)
        hub.close()
