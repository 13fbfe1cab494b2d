"""Matching an image's packages against advisories: pure, no I/O.

A package is looked up by ``(osv_ecosystem, match_name)`` — the ecosystem with its distro release, so a
``Debian:12`` advisory never applies to a Debian 11 package, and the name advisories use (Debian, Ubuntu and Alpine
advisories name source packages: ``InstalledPackage.match_name``/``match_version``) — and evaluated with
``dockyard.vulns.versions`` (univers), which is loaded on the first match, not in every server process.
Withdrawn advisories match nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from dockyard.inventory.model import InstalledPackage
from dockyard.vulns.osv import normalise_package, severity_rank


@dataclass(frozen=True, slots=True)
class PackageKey:
    """How the index and the advisories name a package: ``ecosystem`` with release, ``package`` normalised."""

    ecosystem: str
    package: str


def key_of(pkg: InstalledPackage) -> PackageKey:
    return PackageKey(pkg.osv_ecosystem, normalise_package(pkg.ecosystem, pkg.match_name))


@dataclass(frozen=True, slots=True)
class IndexedPackage:
    """A package as stored for an image (``vuln_image_packages``): enough to match again without the inventory."""

    ecosystem: str  # with release
    package: str  # the name advisories use, normalised
    version: str  # the version advisories compare (the source's for distros)
    name: str  # the installed package's own name
    installed: str  # its own version
    purl: str
    layer: str

    @classmethod
    def of(cls, pkg: InstalledPackage) -> IndexedPackage:
        key = key_of(pkg)
        return cls(key.ecosystem, key.package, pkg.match_version, pkg.name, pkg.version, pkg.purl, pkg.layer)

    @property
    def key(self) -> PackageKey:
        return PackageKey(self.ecosystem, self.package)


@dataclass(frozen=True, slots=True)
class AffectedRow:
    """One ``vuln_affected`` row joined with its advisory's severity."""

    advisory_id: str
    ecosystem: str
    package: str
    ranges: str  # JSON
    versions: str  # JSON
    severity: str
    score: float | None


@dataclass(frozen=True, slots=True)
class Finding:
    advisory_id: str
    ecosystem: str
    package: str
    installed: str
    fixed: str | None
    severity: str
    score: float | None
    purl: str
    layer: str

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.advisory_id, self.package, self.installed)


def match(packages: Iterable[IndexedPackage], affected: Mapping[PackageKey, Sequence[AffectedRow]]) -> list[Finding]:
    """Every (advisory, package) pair where the package's version is affected, one finding each (an advisory with
    several entries for one package counts once), ordered by severity (worst first), then id and package."""
    from dockyard.vulns.versions import evaluate

    found: dict[tuple[str, str, str], Finding] = {}
    for pkg in packages:
        for row in affected.get(pkg.key, ()):
            verdict = evaluate(pkg.ecosystem, pkg.version, json.loads(row.ranges), json.loads(row.versions))
            if not verdict.affected:
                continue
            finding = Finding(
                row.advisory_id,
                pkg.ecosystem,
                pkg.name,
                pkg.installed,
                verdict.fixed,
                row.severity,
                row.score,
                pkg.purl,
                pkg.layer,
            )
            found.setdefault(finding.identity, finding)
    return sorted(
        found.values(), key=lambda f: (-severity_rank(f.severity), -(f.score or 0.0), f.advisory_id, f.package)
    )


def match_packages(
    packages: Sequence[InstalledPackage], affected: Mapping[PackageKey, Sequence[AffectedRow]]
) -> list[Finding]:
    """``match`` for the inventory's shape (``dockyard.inventory.model.InstalledPackage``)."""
    return match([IndexedPackage.of(p) for p in packages], affected)
