"""A scan that read the advisories just before an import committed still ends with the import's findings: the
import waits for the scan's transaction (``hold_advisories``), so its re-match sees the scan's packages. A scan
of an image scanned before that runs between an import and its re-match (a retried scan job) records the
``vulnerability.found`` the re-match would have, once. Runs on the test backend (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.inventory.model import InstalledPackage
from dockyard.models import Manifest, Repository, Tag, VulnFinding
from dockyard.models.base import utcnow
from dockyard.vulns import scanner as scanner_module
from dockyard.vulns.matching import AffectedRow, PackageKey
from dockyard.vulns.scanner import Scanner, summarise
from dockyard.vulns.vulndb import VulnDatabase
from tests.support.jobs import new_database
from tests.vulns.osv_fixture import database_v1, database_v2, write_zip
from tests.vulns.test_scanning import lang

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


class WithLodash(OneImage):
    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        found = await super().packages(manifest_digest)
        return None if found is None else [*found, lang("npm", "lodash", "4.17.20", LAYER)]


async def _found_events(db: Database) -> list[tuple[str, str | None, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            text("SELECT repository, tag, payload FROM events WHERE type = 'vulnerability.found' ORDER BY id")
        )
        return [(r[0], r[1], r[2]) for r in rows]


async def test_a_rescan_between_an_import_and_its_rematch_records_the_new_finding_once(
    db: Database, tmp_path: Path
) -> None:
    async with db.write() as conn:
        repository = (
            await conn.execute(insert(Repository).values(name="team/app", created_at=utcnow()).returning(Repository.id))
        ).scalar_one()
        manifest = (
            await conn.execute(
                insert(Manifest)
                .values(
                    repository_id=repository,
                    digest=DIGEST,
                    media_type="application/vnd.oci.image.manifest.v1+json",
                    size=2,
                    content=b"{}",
                    created_at=utcnow(),
                )
                .returning(Manifest.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(Tag).values(repository_id=repository, name="v1", manifest_id=manifest, updated_at=utcnow())
        )
    scanner = Scanner(db, WithLodash())
    vulndb = VulnDatabase(db)
    await vulndb.import_path(write_zip(tmp_path / "v1.zip", database_v1()))
    first = await scanner.scan(DIGEST)
    assert first is not None
    assert {f.advisory_id for f in first.findings} == {"DSA-0001-1"}
    assert await _found_events(db) == []  # a first scan reports its findings as scan.completed only

    changed = await vulndb.import_path(write_zip(tmp_path / "v2.zip", database_v2()))
    again = await scanner.scan(DIGEST)  # the retried scan job, before the import's re-match
    assert again is not None
    assert {f.advisory_id for f in again.findings} == {"DSA-0001-1", "GHSA-dddd-eeee-ffff"}
    (event,) = await _found_events(db)
    assert event[:2] == ("team/app", "v1")
    payload = json.loads(event[2])
    assert [v["id"] for v in payload["vulnerabilities"]] == ["GHSA-dddd-eeee-ffff"]
    assert payload["summary"] == summarise(again.findings)

    assert await scanner.rematch(changed.keys) == 1
    assert len(await _found_events(db)) == 1  # the re-match finds nothing new: no second event
    assert await scanner.scan(DIGEST) is not None
    assert len(await _found_events(db)) == 1  # nor does a scan with the same advisories
