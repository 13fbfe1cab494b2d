"""``dockyard vulndb import|status`` and ``dockyard scan`` as printed for people (without ``--json``), in process on
a fresh data directory of the test backend, with the test-double inventory (``tests.support.vuln_inventory``) for
the platforms of ``dockyard sample-image``: the status before and after an import (per-ecosystem counts, the
sources, the sync schedule in words), and an image's report — no findings until advisories arrive, then the
findings with an allowlisted one marked and left out of the summary, by tag, default tag and digest; a platform
whose inventory is not available yet, then one whose inventory failed."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from dockyard.authz.principal import OPEN
from dockyard.core.sample_image import build_sample_image
from dockyard.db.engine import Database
from dockyard.settings import load_settings
from dockyard.vulns.manage import VulnSettingsService
from tests.support.cli_tables import tables
from tests.support.vuln_inventory import write_inventory, write_inventory_failure
from tests.unit.cli.test_trust import Deployment
from tests.vulns.osv_fixture import database_v1, write_zip
from tests.vulns.test_scanning import deb, lang

# Wide enough that no cell folds: every row of a table is one line.
COLUMNS = "250"


def deployment(data_dir: Path) -> Deployment:
    made = Deployment(data_dir)
    made.env.update(
        {"DOCKYARD_VULNS_INVENTORY_SOURCE": "tests.support.vuln_inventory:FixtureInventory", "COLUMNS": COLUMNS}
    )
    return made


@pytest.fixture
def dockyard(tmp_path: Path) -> Deployment:
    return deployment(tmp_path / "data")


@pytest.fixture(scope="module")
def untouched(tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """One deployment for the tests that change nothing."""
    return deployment(tmp_path_factory.mktemp("vulns-cli") / "data")


def minute(timestamp: str) -> str:
    """An ISO timestamp of ``--json`` as a table cell shows it."""
    return datetime.fromisoformat(timestamp).strftime("%Y-%m-%d %H:%M UTC")


def status(dockyard: Deployment, **env: str) -> tuple[dict[str, str], list[list[str]], dict[str, Any]]:
    """``vulndb status`` for people (its fields, and its sources' rows) and as JSON, with ``env`` added."""
    saved = dict(dockyard.env)
    dockyard.env.update(env)
    try:
        fields, sources = tables(dockyard("vulndb", "status").stdout)
        shown = json.loads(dockyard("vulndb", "status", "--json").stdout)
    finally:
        dockyard.env = saved
    assert fields.title == "vulnerability database"
    assert sources.title == "sources"
    assert sources.header == ["source", "imported", "advisories", "changed", "seconds", "error"]
    return fields.fields(), sources.rows, shown


def test_vulndb_status_and_import_for_people(dockyard: Deployment, tmp_path: Path) -> None:
    fields, sources, _ = status(dockyard)
    assert fields == {
        "advisories": "0",
        "affected entries": "0",
        "withdrawn": "0",
        "last update": "-",
        "scheduled sync": "off: no vulndb_sources",
    }
    assert sources == []

    advisories = database_v1()
    archive = write_zip(tmp_path / "all.zip", advisories)
    (imported,) = tables(dockyard("vulndb", "import", str(archive)).stdout)
    assert imported.title == "vulnerability data imported"
    result = imported.fields()
    assert float(result.pop("seconds")) >= 0
    assert result == {
        "source": str(archive),
        "advisories_read": str(len(advisories)),
        "changed": str(len(advisories)),
        "skipped": "0",
        "images_rematched": "0",  # nothing scanned yet
    }

    fields, sources, shown = status(dockyard)
    ecosystems = Counter(a["affected"][0]["package"]["ecosystem"].split(":")[0] for a in advisories)
    assert shown["by_ecosystem"] == dict(ecosystems)
    assert fields == {
        "advisories": str(len(advisories)),
        "affected entries": str(sum(len(a["affected"]) for a in advisories)),
        "withdrawn": "0",
        "last update": minute(shown["last_update"]),
        "scheduled sync": "off: no vulndb_sources",
        # the per-ecosystem counts, indented under the totals
        **{f"  {ecosystem}": str(count) for ecosystem, count in shown["by_ecosystem"].items()},
    }
    (source,) = shown["sources"]
    assert source["source"] == str(archive)
    assert sources == [
        [
            str(archive),
            minute(source["imported_at"]),
            str(len(advisories)),
            str(len(advisories)),
            str(round(source["duration_seconds"], 3)),
            "-",
        ]
    ]


@pytest.mark.parametrize(
    ("env", "schedule"),
    [
        ({}, "every 21600 s from 2 sources"),
        ({"DOCKYARD_VULNDB_SYNC_INTERVAL_SECONDS": "900"}, "every 900 s from 2 sources"),
        ({"DOCKYARD_VULNDB_AIR_GAPPED": "true"}, "off: air-gapped (2 sources configured)"),
    ],
)
def test_vulndb_status_tells_the_sync_schedule(untouched: Deployment, env: dict[str, str], schedule: str) -> None:
    sources = "https://osv.example/Debian/all.zip,https://osv.example/PyPI/all.zip"
    fields, rows, shown = status(untouched, DOCKYARD_VULNDB_SOURCES=sources, **env)
    assert fields["scheduled sync"] == schedule
    assert shown["sync"] == schedule
    assert rows == []  # configured, never synced: nothing is fetched by asking


def allow(dockyard: Deployment, namespace: str, vulnerability: str, reason: str) -> None:
    """An allowlist entry of ``namespace`` (there is no command for it: through the service, as the Hub API)."""
    url = (
        dockyard.env.get("DOCKYARD_DATABASE_URL")
        or load_settings(None, data_dir=dockyard.data_dir).effective_database_url
    )

    async def add() -> None:
        db = Database(url)
        try:
            await VulnSettingsService(db).allow(OPEN, namespace, vulnerability, reason=reason, expires_at=None)
        finally:
            await db.close()

    asyncio.run(add())


def report(dockyard: Deployment, image: str, *options: str) -> tuple[str, list[list[str]]]:
    """``scan IMAGE`` for people: the heading and the findings' rows."""
    (table,) = tables(dockyard("scan", image, *options).stdout)
    assert table.header == ["id", "aliases", "package", "installed", "fixed", "severity", "score", "suppressed"]
    return table.title, table.rows


def test_scan_prints_the_report_for_people(dockyard: Deployment, tmp_path: Path) -> None:
    dockyard("sample-image", "--push", "acme/app:v1")
    dockyard("sample-image", "--push", "acme/app")  # the same image as :latest
    sample = build_sample_image()
    platforms = {m["platform"]["architecture"]: m["digest"] for m in json.loads(sample.index)["manifests"]}
    amd64, arm64 = platforms["amd64"], platforms["arm64"]
    layer = f"sha256:{'0' * 64}"
    write_inventory(
        dockyard.data_dir,
        {
            amd64: [
                deb("libssl3", "3.0.11-1~deb12u1", layer, source="openssl"),
                deb("zlib1g", "1:1.2.13.dfsg-1", layer, source="zlib"),
                lang("PyPI", "requests", "2.25.0", layer),
                lang("npm", "left-pad", "1.3.0", layer),  # no advisory names it
            ]
        },
    )

    # Scanned on first request (linux/amd64 by default), before any advisory is known.
    assert report(dockyard, "acme/app:v1") == (f"acme/app:v1 linux/amd64 {amd64}: 4 packages; no findings", [])

    # An import re-matches the scanned image; an allowlist entry (by alias) suppresses one finding.
    imported = json.loads(
        dockyard("vulndb", "import", str(write_zip(tmp_path / "all.zip", database_v1())), "--json").stdout
    )
    assert imported["images_rematched"] == 1
    allow(dockyard, "acme", "CVE-2024-0003", "no network use")
    findings = [
        ["DSA-0001-1", "CVE-2024-0001", "libssl3", "3.0.11-1~deb12u1", "3.0.13-1~deb12u1", "critical", "9.8", "-"],
        [
            "DEBIAN-CVE-2024-0003",
            "CVE-2024-0003",
            "zlib1g",
            "1:1.2.13.dfsg-1",
            "-",
            "high",
            "7.5",
            "allowlist: no network use",
        ],
        ["GHSA-aaaa-bbbb-cccc", "CVE-2024-0004", "requests", "2.25.0", "2.31.0", "medium", "-", "-"],
    ]
    summary = f"linux/amd64 {amd64}: 4 packages; 1 critical, 1 medium"  # the suppressed finding is not counted
    title, rows = report(dockyard, "acme/app:v1")
    assert title == f"acme/app:v1 {summary}"
    assert sorted(rows) == sorted(findings)
    # the same report as JSON: the rows are its findings
    shown = json.loads(dockyard("scan", "acme/app:v1", "--json").stdout)
    assert (shown["digest"], shown["platform"], shown["packages"], shown["error"]) == (amd64, "linux/amd64", 4, None)
    assert rows == [
        [
            f["id"],
            ", ".join(f["aliases"]),
            f["package"],
            f["installed"],
            f["fixed"] or "-",
            f["severity"],
            "-" if f["score"] is None else str(f["score"]),
            "-" if f["suppressed"] is None else f"{f['suppressed']['kind']}: {f['suppressed']['reason']}",
        ]
        for f in shown["findings"]
    ]
    # NS/REPO means its latest tag; NS/REPO@DIGEST the index, resolved to the platform.
    title, rows = report(dockyard, "acme/app")
    assert (title, sorted(rows)) == (f"acme/app {summary}", sorted(findings))
    title, rows = report(dockyard, f"acme/app@{sample.index_digest}", "--platform", "linux/amd64")
    assert (title, sorted(rows)) == (f"acme/app@{sample.index_digest} {summary}", sorted(findings))

    # linux/arm64: no inventory yet, so not scanned; asked again once its inventory failed, the error.
    pending = dockyard("scan", "acme/app:v1", "--platform", "linux/arm64").stdout
    assert pending.splitlines() == [f"acme/app:v1 ({arm64}) has not been scanned: its inventory is not available yet"]
    write_inventory_failure(dockyard.data_dir, arm64, "layer is not a tar archive")
    failed = dockyard("scan", "acme/app:v1", "--platform", "linux/arm64").stdout
    assert failed.splitlines() == [f"acme/app:v1 ({arm64}) cannot be scanned: layer is not a tar archive"]

    missing = dockyard("scan", "acme/app:v2", ok=False)
    assert missing.exit_code == 1
    assert missing.output.startswith("Error: ")
