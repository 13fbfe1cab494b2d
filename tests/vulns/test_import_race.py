"""A scan that read the advisories just before an import committed still ends with the import's findings: the
import waits for the scan's transaction (``hold_advisories``), so its re-match sees the scan's packages. Runs on
the test backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.inventory.model import InstalledPackage
from dockyard.models import VulnFinding
from dockyard.vulns import scanner as scanner_module
from dockyard.vulns.matching import AffectedRow, PackageKey
from dockyard.vulns.scanner import Scanner
from dockyard.vulns.vulndb import VulnDatabase
from tests.support.jobs import new_database
from tests.vulns.osv_fixture import database_v1, write_zip

DIGEST = "sha256:" + "a" * 64
LAYER = "sha256:" + "b" * 64


class OneImage:
    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        purl = "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?distro=debian-12"
        package = InstalledPackage(
            "Debian",
            "libssl3",
            "3.0.11-1~deb12u1",
            purl,
            LAYER,
            "/var/lib/dpkg/status",
            release="12",
            source_name="openssl",
        )
        return [package] if manifest_digest == DIGEST else None

    async def failure(self, manifest_digest: str) -> str | None:
        return None


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with new_database(tmp_path) as database:
        yield database


async def test_an_import_committed_while_a_scan_matches_is_not_lost(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = Scanner(db, OneImage())
    real = scanner_module.affected_rows
    matched, release = asyncio.Event(), asyncio.Event()

    async def paused(conn: AsyncConnection, keys: Iterable[PackageKey]) -> dict[PackageKey, list[AffectedRow]]:
        found = await real(conn, keys)
        matched.set()
        await release.wait()
        return found

    monkeypatch.setattr(scanner_module, "affected_rows", paused)
    scan = asyncio.create_task(scanner.scan(DIGEST))
    await asyncio.wait_for(matched.wait(), 30)
    monkeypatch.setattr(scanner_module, "affected_rows", real)  # the re-match reads the advisories unpaused

    async def import_and_rematch() -> int:
        result = await VulnDatabase(db).import_path(write_zip(tmp_path / "all.zip", database_v1()))
        return await scanner.rematch(result.keys)

    imported = asyncio.create_task(import_and_rematch())
    await asyncio.sleep(0.5)  # time enough for the import to commit and re-match, were it not held
    assert not imported.done()
    release.set()
    result = await asyncio.wait_for(scan, 30)
    assert result is not None
    assert result.findings == []  # matched against the advisories before the import
    assert await asyncio.wait_for(imported, 30) == 1  # the import's re-match found the scanned image
    async with db.read() as conn:
        found = await conn.execute(select(VulnFinding.advisory_id).where(VulnFinding.manifest_digest == DIGEST))
        assert set(found.scalars()) == {"DSA-0001-1"}
