"""Vulnerability scanning (``dockyard.vulns``): the imported OSV data, what each scanned image holds and what
matched, and the namespaces' VEX statements, allowlists and pull policies.

- ``vuln_sources``: one row per imported source (a path or URL): when, how many advisories, the last error.
- ``vuln_advisories``: one row per OSV advisory (its id), replaced when a newer ``modified`` is imported;
  ``vuln_affected``: its affected entries, one per (ecosystem with release, package), keyed for matching.
- ``vuln_image_packages``: the packages of each scanned image manifest (from the inventory), keyed by
  (ecosystem, package) — the index a new import uses to re-match only the images it concerns.
- ``vuln_scans``: one row per scanned image manifest; ``vuln_findings``: its findings.
- ``vuln_vex``, ``vuln_allowlist``, ``vuln_policies``: per namespace (``registry.namespaces`` lists them).

Image rows are keyed by manifest digest, not by repository: content is shared, and a report is the same wherever
the image is; policies and suppressions are applied per namespace when reading.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, utcnow


class VulnSource(Base):
    __tablename__ = "vuln_sources"

    source: Mapped[str] = mapped_column(String(1024), primary_key=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    advisories: Mapped[int] = mapped_column(Integer, default=0)  # read from it by the last successful import
    changed: Mapped[int] = mapped_column(Integer, default=0)  # of those, new or newer than what was stored
    duration_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # the last failed import's reason


class VulnAdvisory(Base):
    """``severity``: critical | high | medium | low | unknown; ``score``: the highest CVSS base score, if any;
    ``vectors``: JSON list of ``{"type", "vector", "score"}``; ``aliases``: JSON list (CVE ids…)."""

    __tablename__ = "vuln_advisories"

    id: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    aliases: Mapped[str] = mapped_column(Text, default="[]")
    summary: Mapped[str] = mapped_column(Text, default="")
    modified: Mapped[datetime] = mapped_column(UTCDateTime())
    published: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    withdrawn: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    severity: Mapped[str] = mapped_column(String(16), default="unknown")
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    vectors: Mapped[str] = mapped_column(Text, default="[]")
    source: Mapped[str] = mapped_column(String(1024), default="")


class VulnAffected(Base):
    """One affected entry: ``ecosystem`` as OSV writes it (``Debian:12``, ``Alpine:v3.19``, ``PyPI``), ``package``
    (PyPI names normalised as PEP 503), ``ranges`` (JSON: ``[{"type", "events": [{"introduced": …}, …]}]``),
    ``versions`` (JSON list), ``fixed`` (JSON list of the fixed versions of its ranges) and ``severity`` (an
    entry's own label from ``ecosystem_specific``/``database_specific``, when the advisory has none)."""

    __tablename__ = "vuln_affected"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    advisory_id: Mapped[str] = mapped_column(ascii_string(255))
    ecosystem: Mapped[str] = mapped_column(String(100))
    package: Mapped[str] = mapped_column(String(512))
    ranges: Mapped[str] = mapped_column(Text, default="[]")
    versions: Mapped[str] = mapped_column(Text, default="[]")
    fixed: Mapped[str] = mapped_column(Text, default="[]")
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)

    __table_args__ = (
        Index("ix_vuln_affected_package", "ecosystem", "package"),
        Index("ix_vuln_affected_advisory", "advisory_id"),
    )


class VulnImagePackage(Base):
    """A package of a scanned image manifest as matching sees it (``ecosystem`` with release, ``package`` the
    name advisories use, ``version`` its version) and as reports show it (``name``, ``installed``, ``purl``,
    ``layer``)."""

    __tablename__ = "vuln_image_packages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    manifest_digest: Mapped[str] = mapped_column(ascii_string(140))
    ecosystem: Mapped[str] = mapped_column(String(100))
    package: Mapped[str] = mapped_column(String(512))
    version: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(512))
    installed: Mapped[str] = mapped_column(String(255))
    purl: Mapped[str] = mapped_column(Text, default="")
    layer: Mapped[str] = mapped_column(String(140), default="")

    __table_args__ = (
        Index("ix_vuln_image_packages_package", "ecosystem", "package"),
        Index("ix_vuln_image_packages_digest", "manifest_digest"),
    )


class VulnScan(Base):
    """``state``: ``scanned`` or ``failed`` (``error`` says why: no inventory, …)."""

    __tablename__ = "vuln_scans"

    manifest_digest: Mapped[str] = mapped_column(ascii_string(140), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    packages: Mapped[int] = mapped_column(Integer, default=0)
    findings: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    scanned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class VulnFinding(Base):
    __tablename__ = "vuln_findings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    manifest_digest: Mapped[str] = mapped_column(ascii_string(140))
    advisory_id: Mapped[str] = mapped_column(ascii_string(255))
    ecosystem: Mapped[str] = mapped_column(String(100))
    package: Mapped[str] = mapped_column(String(512))  # the installed (binary) package's name
    installed: Mapped[str] = mapped_column(String(255))
    fixed: Mapped[str | None] = mapped_column(String(255), nullable=True)
    severity: Mapped[str] = mapped_column(String(16))
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    purl: Mapped[str] = mapped_column(Text, default="")
    layer: Mapped[str] = mapped_column(String(140), default="")

    __table_args__ = (Index("ix_vuln_findings_digest", "manifest_digest"),)


class VulnVex(Base):
    """One OpenVEX statement of a document uploaded to a namespace: ``vulnerability`` (an id or alias),
    ``product`` (an image digest, ``pkg:oci/…@sha256:…`` or a package purl), ``subcomponent`` (a package purl or
    ""), ``status`` (not_affected | fixed | affected | under_investigation)."""

    __tablename__ = "vuln_vex"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    document: Mapped[str] = mapped_column(String(512))  # the document's @id
    vulnerability: Mapped[str] = mapped_column(String(255))
    product: Mapped[str] = mapped_column(Text)
    subcomponent: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(32))
    justification: Mapped[str] = mapped_column(Text, default="")
    statement_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_vuln_vex_namespace", "namespace", "vulnerability"),)


class VulnAllowlistEntry(Base):
    __tablename__ = "vuln_allowlist"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    vulnerability: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "vulnerability", name="uq_vuln_allowlist_entry"),)


class VulnPolicy(Base):
    """``repository`` "": the namespace's default. ``mode`` off | warn | enforce; ``severity`` the lowest that
    counts (low | medium | high | critical); ``unscanned`` serve | refuse (images without a scan)."""

    __tablename__ = "vuln_policies"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    repository: Mapped[str] = mapped_column(ascii_string(255), default="")
    mode: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(16), default="high")
    unscanned: Mapped[str] = mapped_column(String(8), default="serve")
    updated_by: Mapped[str] = mapped_column(String(255), default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (UniqueConstraint("namespace", "repository", name="uq_vuln_policies_scope"),)
