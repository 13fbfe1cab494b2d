"""Vulnerability reports: the findings of an image platform with their advisories' aliases and summaries, and
the namespace's VEX statements and allowlist and the OpenVEX documents attached to the image (``vexrefs``) applied
(a suppressed finding stays in the report, marked with the reason). ``VulnerabilityReports.for_tag`` is the Hub
API's and the CLI's: it resolves the image under the pull check (``layers.images.resolve_image``: a repository the
caller may not pull is ``NotFound``) and scans it first when it was never scanned."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.layers.images import resolve_image
from dockyard.models import VulnAdvisory, VulnFinding, VulnScan
from dockyard.models.base import utcnow
from dockyard.vulns.manage import load_suppressions
from dockyard.vulns.osv import SEVERITIES
from dockyard.vulns.scanner import FAILED, Scanner
from dockyard.vulns.suppress import Suppression, Suppressions
from dockyard.vulns.vexrefs import ReferrerVex


@dataclass(frozen=True, slots=True)
class ReportedFinding:
    id: str
    aliases: list[str]
    summary: str
    package: str
    ecosystem: str
    installed: str
    fixed: str | None
    severity: str
    score: float | None
    purl: str
    layer: str
    suppressed: Suppression | None


@dataclass(frozen=True, slots=True)
class Report:
    repository: str
    reference: str
    digest: str  # the image (platform) manifest's
    platform: str
    scanned: bool
    scanned_at: datetime | None
    packages: int
    findings: list[ReportedFinding]
    error: str | None = None  # the image cannot be scanned: why (its inventory failed)

    def summary(self, *, include_suppressed: bool = False) -> dict[str, int]:
        counts = dict.fromkeys(reversed(SEVERITIES), 0)
        for f in self.findings:
            if include_suppressed or f.suppressed is None:
                counts[f.severity] = counts.get(f.severity, 0) + 1
        return counts


async def image_findings(
    conn: AsyncConnection, digest: str, suppressions: Suppressions
) -> tuple[Any, list[ReportedFinding]]:
    """The scan row of image manifest ``digest`` (None: never scanned; ``state`` ``failed``: cannot be, ``error``
    says why) and its findings, suppressions applied."""
    scan = (await conn.execute(select(VulnScan).where(VulnScan.manifest_digest == digest))).first()
    if scan is None or scan.state == FAILED:
        return scan, []
    rows = await conn.execute(
        select(VulnFinding.__table__, VulnAdvisory.aliases, VulnAdvisory.summary)
        .join(VulnAdvisory, VulnAdvisory.id == VulnFinding.advisory_id, isouter=True)
        .where(VulnFinding.manifest_digest == digest)
        .order_by(VulnFinding.id)
    )
    now = utcnow()
    findings: list[ReportedFinding] = []
    for finding in rows:
        aliases = [a for a in json.loads(finding.aliases or "[]") if isinstance(a, str)]
        findings.append(
            ReportedFinding(
                id=finding.advisory_id,
                aliases=aliases,
                summary=finding.summary or "",
                package=finding.package,
                ecosystem=finding.ecosystem,
                installed=finding.installed,
                fixed=finding.fixed,
                severity=finding.severity,
                score=finding.score,
                purl=finding.purl,
                layer=finding.layer,
                suppressed=suppressions.why([finding.advisory_id, *aliases], finding.purl, digest, now),
            )
        )
    return scan, findings


class VulnerabilityReports:
    """``vex`` reads the OpenVEX documents attached to images (``vexrefs``); without it only the namespace's
    uploaded VEX and allowlist apply."""

    def __init__(self, db: Database, scanner: Scanner, vex: ReferrerVex | None = None) -> None:
        self.db = db
        self.scanner = scanner
        self.vex = vex

    async def for_tag(
        self, actor: Principal, namespace: str, name: str, reference: str, platform: str | None = None
    ) -> Report:
        """The report of ``reference`` (a tag or digest; an index's platform image) in Hub repository
        ``namespace``/``name``. Raises ``NotFound`` (repository hidden or missing, tag, manifest),
        ``Unsupported`` (an artifact that is not an image), ``Invalid`` (a malformed platform)."""
        async with self.db.read(consistent=True) as conn:
            image = await resolve_image(conn, actor, namespace, name, reference, platform)
            scanned = (
                await conn.execute(select(VulnScan.manifest_digest).where(VulnScan.manifest_digest == image.digest))
            ).first()
        if scanned is None:
            await self.scanner.scan(image.digest)
        async with self.db.read(consistent=True) as conn:
            suppressions = await load_suppressions(conn, namespace_of(image.repository))
            if self.vex is not None:
                suppressions = await self.vex.with_referrers(conn, suppressions, image.repository, image.digest)
            scan, findings = await image_findings(conn, image.digest, suppressions)
        return Report(
            repository=image.repository,
            reference=reference,
            digest=image.digest,
            platform=image.platform,
            scanned=scan is not None and scan.state != FAILED,
            scanned_at=scan.scanned_at if scan is not None else None,
            packages=scan.packages if scan is not None else 0,
            findings=findings,
            error=scan.error if scan is not None and scan.state == FAILED else None,
        )
