"""Scanning images: an image manifest's packages (from an ``InventorySource``) matched against the stored
advisories, the findings and the package index written in one transaction, and re-matching after an import.

The package index (``vuln_image_packages``: (ecosystem, package) → image manifest) is what makes re-matching
cheap: an import touching a few packages re-matches only the images that hold one of them, and in each only those
packages (its other findings stand), from the stored packages, without reading any layer again.
``scan.completed`` is recorded for each scan and ``vulnerability.found`` when a re-match or a new scan finds a new
critical or high finding in an image that was scanned before (one event per repository holding the image; webhooks
turn them into ``scan_completed``/``vulnerability_found``). A scan job retried after a report scanned the image on
demand may run between an import and its re-match and find the new advisory first: it records the event then.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, delete, func, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.db.statements import hold_lock
from dockyard.events.outbox import SCAN_COMPLETED, VULNERABILITY_FOUND, record_event
from dockyard.inventory.model import InstalledPackage
from dockyard.models import (
    Manifest,
    Repository,
    Tag,
    VulnAdvisory,
    VulnAffected,
    VulnFinding,
    VulnImagePackage,
    VulnScan,
)
from dockyard.models.base import utcnow
from dockyard.vulns.matching import AffectedRow, Finding, IndexedPackage, PackageKey, match
from dockyard.vulns.osv import SEVERITIES, severity_rank
from dockyard.vulns.vulndb import hold_advisories

log = logging.getLogger("dockyard.vulns")

KEY_BATCH = 200
SCANNED, FAILED = "scanned", "failed"  # vuln_scans.state
NOTIFY_AT = severity_rank("high")  # vulnerability.found: new findings at or above this


class InventorySource(Protocol):
    """What scanning needs from the inventory (``dockyard.inventory``): the packages of an image manifest."""

    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        """The packages found in the image manifest ``manifest_digest`` (a single-platform image), or None when
        its inventory is not available (not computed yet, not an image, or it failed)."""
        ...

    async def failure(self, manifest_digest: str) -> str | None:
        """Why the inventory of ``manifest_digest`` failed (an unreadable layer or package database: it will not
        be tried again), or None when it did not fail (it may still be pending)."""
        ...


class NoInventory:
    """An ``InventorySource`` that knows no image (used when none is configured): every image stays unscanned."""

    async def packages(self, manifest_digest: str) -> list[InstalledPackage] | None:
        return None

    async def failure(self, manifest_digest: str) -> str | None:
        return None


class ScanObserver(Protocol):
    """Told of each scan and import (the Prometheus metrics of ``dockyard.http``)."""

    def scan_finished(self, seconds: float, findings: Sequence[Finding]) -> None: ...

    def import_finished(self, seconds: float) -> None: ...


@dataclass(frozen=True, slots=True)
class ScanResult:
    """A scan's outcome; ``error`` when the image cannot be scanned (its inventory failed: no findings)."""

    manifest_digest: str
    packages: int
    findings: list[Finding]
    error: str | None = None


async def affected_rows(conn: AsyncConnection, keys: Iterable[PackageKey]) -> dict[PackageKey, list[AffectedRow]]:
    """The affected entries of non-withdrawn advisories for ``keys``, with each advisory's severity (an entry's
    own label when the advisory has none)."""
    wanted = sorted({(k.ecosystem, k.package) for k in keys})
    found: dict[PackageKey, list[AffectedRow]] = defaultdict(list)
    for start in range(0, len(wanted), KEY_BATCH):
        chunk = wanted[start : start + KEY_BATCH]
        rows = await conn.execute(
            select(
                VulnAffected.advisory_id,
                VulnAffected.ecosystem,
                VulnAffected.package,
                VulnAffected.ranges,
                VulnAffected.versions,
                VulnAffected.severity.label("entry_severity"),
                VulnAdvisory.severity,
                VulnAdvisory.score,
            )
            .join(VulnAdvisory, VulnAdvisory.id == VulnAffected.advisory_id)
            .where(tuple_(VulnAffected.ecosystem, VulnAffected.package).in_(chunk), VulnAdvisory.withdrawn.is_(None))
        )
        for r in rows:
            severity = r.severity if r.severity != "unknown" or r.entry_severity is None else r.entry_severity
            found[PackageKey(r.ecosystem, r.package)].append(
                AffectedRow(r.advisory_id, r.ecosystem, r.package, r.ranges, r.versions, severity, r.score)
            )
    return found


class Scanner:
    def __init__(self, db: Database, inventory: InventorySource, observer: ScanObserver | None = None) -> None:
        self.db = db
        self.inventory = inventory
        self.observer = observer

    async def scan(self, manifest_digest: str) -> ScanResult | None:
        """Scan the image manifest; None when the inventory has nothing for it yet (it stays unscanned). An image
        whose inventory failed ends ``failed`` with that error recorded (``vuln_scans``), shown in its report."""
        started = time.monotonic()
        installed = await self.inventory.packages(manifest_digest)
        if installed is None:
            error = await self.inventory.failure(manifest_digest)
            if error is None:
                return None
            await self._failed(manifest_digest, error)
            return ScanResult(manifest_digest, 0, [], error)
        packages = list({IndexedPackage.of(p): None for p in installed})
        async with self.db.write() as conn:
            # The advisories are read in the transaction that stores the packages, under the import's lock: an
            # import either finished before (and is read here) or re-matches these packages after.
            await hold_advisories(conn, exclusive=False)
            await _hold_image(conn, manifest_digest)
            affected = await affected_rows(conn, (p.key for p in packages))
            findings = match(packages, affected)
            before = await _scanned_findings(conn, manifest_digest)
            await conn.execute(delete(VulnImagePackage).where(VulnImagePackage.manifest_digest == manifest_digest))
            if packages:
                await conn.execute(
                    insert(VulnImagePackage),
                    [
                        {
                            "manifest_digest": manifest_digest,
                            "ecosystem": p.ecosystem,
                            "package": p.package[:512],
                            "version": p.version[:255],
                            "name": p.name[:512],
                            "installed": p.installed[:255],
                            "purl": p.purl,
                            "layer": p.layer[:140],
                        }
                        for p in packages
                    ],
                )
            await _store_findings(conn, manifest_digest, findings, len(packages))
            if before is not None:
                await _record_found(conn, manifest_digest, [f for f in findings if f.identity not in before])
            payload = {"summary": summarise(findings), "packages": len(packages)}
            await _record_for_holders(conn, SCAN_COMPLETED, manifest_digest, payload)
        if self.observer is not None:
            self.observer.scan_finished(time.monotonic() - started, findings)
        return ScanResult(manifest_digest, len(packages), findings)

    async def _failed(self, manifest_digest: str, error: str) -> None:
        async with self.db.write() as conn:
            await _hold_image(conn, manifest_digest)
            await conn.execute(delete(VulnImagePackage).where(VulnImagePackage.manifest_digest == manifest_digest))
            await conn.execute(delete(VulnFinding).where(VulnFinding.manifest_digest == manifest_digest))
            values = {"state": FAILED, "packages": 0, "findings": 0, "error": error[:1000], "scanned_at": utcnow()}
            updated = await conn.execute(
                update(VulnScan).where(VulnScan.manifest_digest == manifest_digest).values(**values)
            )
            if updated.rowcount == 0:
                await conn.execute(insert(VulnScan).values(manifest_digest=manifest_digest, **values))

    async def rematch(self, keys: Iterable[PackageKey]) -> int:
        """Match again every scanned image holding one of ``keys`` (after an import changed their advisories), from
        the stored packages. Records ``vulnerability.found`` for new critical/high findings. Returns how many images
        were re-matched."""
        wanted = sorted({(k.ecosystem, k.package) for k in keys})
        digests: set[str] = set()
        async with self.db.read() as conn:
            for start in range(0, len(wanted), KEY_BATCH):
                chunk = wanted[start : start + KEY_BATCH]
                rows = await conn.execute(
                    select(VulnImagePackage.manifest_digest)
                    .where(tuple_(VulnImagePackage.ecosystem, VulnImagePackage.package).in_(chunk))
                    .distinct()
                )
                digests.update(rows.scalars().all())
        touched = {PackageKey(e, p) for e, p in wanted}
        for digest in sorted(digests):
            await self._rematch_one(digest, touched)
        return len(digests)

    async def _rematch_one(self, digest: str, touched: set[PackageKey]) -> None:
        """Match again the packages of image ``digest`` that ``touched`` names; its other findings stand."""
        async with self.db.read(consistent=True) as conn:
            stored = (
                await conn.execute(select(VulnImagePackage).where(VulnImagePackage.manifest_digest == digest))
            ).all()
            packages = [
                IndexedPackage(p.ecosystem, p.package, p.version, p.name, p.installed, p.purl, p.layer)
                for p in stored
                if PackageKey(p.ecosystem, p.package) in touched
            ]
            affected = await affected_rows(conn, (p.key for p in packages))
        findings = match(packages, affected)
        names = sorted({(p.ecosystem, p.name[:512]) for p in packages})
        async with self.db.write() as conn:
            await _hold_image(conn, digest)
            mine = tuple_(VulnFinding.ecosystem, VulnFinding.package).in_(names)
            before = await _identities(conn, digest, mine)
            await conn.execute(delete(VulnFinding).where(VulnFinding.manifest_digest == digest, mine))
            await _insert_findings(conn, digest, findings)
            total = (
                await conn.execute(
                    select(func.count()).select_from(VulnFinding).where(VulnFinding.manifest_digest == digest)
                )
            ).scalar_one()
            await conn.execute(
                update(VulnScan).where(VulnScan.manifest_digest == digest).values(findings=total, scanned_at=utcnow())
            )
            await _record_found(conn, digest, [f for f in findings if f.identity not in before])


async def _scanned_findings(conn: AsyncConnection, digest: str) -> set[tuple[str, str, str]] | None:
    """The identities of image ``digest``'s findings, or None when it was never scanned (or its scan failed)."""
    state = (await conn.execute(select(VulnScan.state).where(VulnScan.manifest_digest == digest))).scalar_one_or_none()
    return await _identities(conn, digest) if state == SCANNED else None


async def _identities(conn: AsyncConnection, digest: str, *where: ColumnElement[bool]) -> set[tuple[str, str, str]]:
    """The identities (``Finding.identity``) of image ``digest``'s stored findings that match ``where``."""
    rows = await conn.execute(
        select(VulnFinding.advisory_id, VulnFinding.package, VulnFinding.installed).where(
            VulnFinding.manifest_digest == digest, *where
        )
    )
    return {(r.advisory_id, r.package, r.installed) for r in rows}


async def _record_found(conn: AsyncConnection, digest: str, fresh: Sequence[Finding]) -> None:
    """Record ``vulnerability.found`` for each repository holding image ``digest`` when ``fresh`` (its findings
    that were not there before) has one at or above ``NOTIFY_AT``; the summary counts all its stored findings."""
    new = [f for f in fresh if severity_rank(f.severity) >= NOTIFY_AT]
    if not new:
        return
    every = [
        Finding(r.advisory_id, r.ecosystem, r.package, r.installed, r.fixed, r.severity, r.score, "", "")
        for r in await conn.execute(select(VulnFinding).where(VulnFinding.manifest_digest == digest))
    ]
    listed = [{"id": f.advisory_id, "package": f.package, "severity": f.severity, "fixed": f.fixed} for f in new][:50]
    await _record_for_holders(
        conn, VULNERABILITY_FOUND, digest, {"vulnerabilities": listed, "summary": summarise(every)}
    )


async def _record_for_holders(conn: AsyncConnection, event: str, digest: str, payload: dict[str, object]) -> None:
    """Record ``event`` about image ``digest`` once for each repository holding it (with one of its tags there)."""
    for repository, tag in await _holders(conn, digest):
        await record_event(conn, event, repository=repository, tag=tag, digest=digest, payload=payload)


async def _hold_image(conn: AsyncConnection, digest: str) -> None:
    """One writer of an image's scan at a time (a scan job, a report scanning on demand, a re-match): each replaces
    rows the other would insert too. SQLite's write transactions are serial already; PostgreSQL takes a
    transaction-level advisory lock on the digest."""
    await hold_lock(conn, f"vulnscan:{digest}")


def summarise(findings: Iterable[Finding]) -> dict[str, int]:
    """Findings per severity, every severity present (0 when none)."""
    counts = Counter(f.severity for f in findings)
    return {label: counts.get(label, 0) for label in reversed(SEVERITIES)}


async def _store_findings(conn: AsyncConnection, digest: str, findings: Sequence[Finding], packages: int) -> None:
    await conn.execute(delete(VulnFinding).where(VulnFinding.manifest_digest == digest))
    await _insert_findings(conn, digest, findings)
    values = {
        "state": SCANNED,
        "packages": packages,
        "findings": len(findings),
        "error": None,
        "scanned_at": utcnow(),
    }
    updated = await conn.execute(update(VulnScan).where(VulnScan.manifest_digest == digest).values(**values))
    if updated.rowcount == 0:
        await conn.execute(insert(VulnScan).values(manifest_digest=digest, **values))


async def _insert_findings(conn: AsyncConnection, digest: str, findings: Sequence[Finding]) -> None:
    if findings:
        await conn.execute(
            insert(VulnFinding),
            [
                {
                    "manifest_digest": digest,
                    "advisory_id": f.advisory_id,
                    "ecosystem": f.ecosystem,
                    "package": f.package[:512],
                    "installed": f.installed[:255],
                    "fixed": f.fixed[:255] if f.fixed else None,
                    "severity": f.severity,
                    "score": f.score,
                    "purl": f.purl,
                    "layer": f.layer[:140],
                }
                for f in findings
            ],
        )


async def _holders(conn: AsyncConnection, digest: str) -> list[tuple[str, str | None]]:
    """(repository, one of its tags on the manifest or None) for each repository holding the manifest."""
    rows = await conn.execute(
        select(Repository.name, Manifest.id)
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(Manifest.digest == digest)
        .order_by(Repository.name)
        .limit(50)
    )
    holders: list[tuple[str, str | None]] = []
    for name, manifest_id in rows.all():
        tag = (
            await conn.execute(select(Tag.name).where(Tag.manifest_id == manifest_id).order_by(Tag.name).limit(1))
        ).scalar_one_or_none()
        holders.append((name, tag))
    return holders


def load_json_list(text: str) -> list[str]:
    value = json.loads(text or "[]")
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
