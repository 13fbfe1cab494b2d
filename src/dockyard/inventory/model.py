"""The inventory's one shape: an installed package as found in an image, named the way OSV names it.

``dockyard.inventory`` produces these (from the layer file index); ``dockyard.vulns`` matches them against
advisories. The fields are what matching needs: the OSV ecosystem and distro release, the binary and source
names and versions, and the layer that brought the package (reports name it).
"""

from __future__ import annotations

from dataclasses import dataclass

SPDX_MEDIA_TYPE = "application/spdx+json"  # an SPDX 2.3 JSON document (the SBOM referrers' artifact type)


@dataclass(frozen=True, slots=True)
class InstalledPackage:
    ecosystem: str
    """OSV ecosystem without release: "Debian", "Ubuntu", "Alpine", "Red Hat", "PyPI", "npm", "Go", "Maven"."""
    name: str
    """The package's own (binary) name; for Maven ``group:artifact``, for Go the module path."""
    version: str
    """The installed version as the ecosystem writes it (Debian: with epoch and revision, e.g. ``1:2.36-9+deb12u4``)."""
    purl: str
    """Package URL (``pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12``)."""
    layer: str
    """Digest of the layer whose files hold the package's record (the uppermost one, after whiteouts)."""
    path: str
    """Absolute path of the record it was read from (``/var/lib/dpkg/status``, a ``METADATA`` file, a binary)."""
    release: str | None = None
    """Distro release for OS packages, as in OSV's ecosystem suffix: "12" for ``Debian:12``, "v3.19" for
    ``Alpine:v3.19``, "22.04" for ``Ubuntu:22.04``; None for language packages."""
    source_name: str | None = None
    """The source package (Debian/Ubuntu ``Source:``, Alpine ``o:`` origin, RPM source rpm name); advisories of
    Debian, Ubuntu and Alpine name source packages. None: the same as ``name``."""
    source_version: str | None = None
    """The source package's version when it differs from ``version`` (Debian ``Source: name (version)``)."""

    @property
    def osv_ecosystem(self) -> str:
        """The ecosystem string OSV advisories carry: ``Debian:12``, ``Alpine:v3.19``, ``PyPI``."""
        return f"{self.ecosystem}:{self.release}" if self.release else self.ecosystem

    @property
    def match_name(self) -> str:
        """The name advisories of this ecosystem use (the source package for distros that name sources)."""
        return self.source_name or self.name

    @property
    def match_version(self) -> str:
        return self.source_version or self.version
