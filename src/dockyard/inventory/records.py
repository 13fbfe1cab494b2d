"""What the detectors find in one layer, before the image it belongs to is known: ``PackageRecord`` (a package as
its record file writes it, without distro or Package URL — those depend on the image's ``/etc/os-release``,
which may sit in another layer) and ``OsRelease``. Stored per layer (``layer_packages``) and turned into
``InstalledPackage`` per image (``dockyard.inventory.image``).

``PackageDBError`` is a package database that cannot be read (malformed, binary junk, past a size cap): it ends
the inventory of every image holding it, with the error recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import IO

MAX_FIELD = 1024  # longer names or versions are not a real package's
_NAME = re.compile(r"^[A-Za-z0-9@._+~/:-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9._+~:^-]+$")


class PackageDBError(Exception):
    """A package database or record file that cannot be read."""


class RecordType(StrEnum):
    """Where a record comes from, which decides its ecosystem and Package URL type."""

    DEB = "deb"
    APK = "apk"
    RPM = "rpm"
    PYPI = "pypi"
    NPM = "npm"
    GOLANG = "golang"
    MAVEN = "maven"


@dataclass(frozen=True, slots=True)
class PackageRecord:
    """One package as its record writes it. ``name`` is Maven's ``group:artifact``, Go's module path (``stdlib``
    for the Go toolchain a binary was built with); ``version`` as the ecosystem writes it (RPM
    ``[epoch:]version-release``)."""

    type: RecordType
    name: str
    version: str
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None


@dataclass(frozen=True, slots=True)
class OsRelease:
    """The fields of an ``os-release`` file that name the distribution."""

    id: str
    version_id: str | None
    version_codename: str | None
    pretty_name: str | None


def read_capped(content: IO[bytes], limit: int, what: str) -> bytes:
    """All of ``content`` if it is at most ``limit`` bytes; raises ``PackageDBError`` if it is larger."""
    data = content.read(limit + 1)
    if len(data) > limit:
        raise PackageDBError(f"{what} is larger than {limit} bytes")
    return data


def check_name(value: str | None, what: str) -> str:
    """``value`` if it looks like a package name; raises ``PackageDBError``."""
    if not value or len(value) > MAX_FIELD or not _NAME.match(value):
        raise PackageDBError(f"{what}: not a package name: {(value or '')[:80]!r}")
    return value


def check_version(value: str | None, what: str) -> str:
    """``value`` if it looks like a version; raises ``PackageDBError``."""
    if not value or len(value) > MAX_FIELD or not _VERSION.match(value):
        raise PackageDBError(f"{what}: not a version: {(value or '')[:80]!r}")
    return value
