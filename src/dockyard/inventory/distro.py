"""Detectors of the distribution and its package databases: ``os-release``, dpkg's ``status`` (and distroless
``status.d/*``) and Alpine's ``installed``. Each reads a file's content (a file-like object over the layer
stream) and returns what it names; a database that cannot be read raises ``PackageDBError``.

dpkg uses python-debian's deb822 parser (the format's own rules: continuation lines, comments, paragraphs);
only packages whose ``Status`` says ``installed`` count (a distroless ``status.d`` file has no ``Status``).
"""

from __future__ import annotations

import re
from typing import IO, TYPE_CHECKING

from dockyard.inventory.records import (
    MAX_FIELD,
    OsRelease,
    PackageDBError,
    PackageRecord,
    RecordType,
    check_name,
    check_version,
    read_capped,
)

if TYPE_CHECKING:
    from debian.deb822 import Deb822

MAX_OS_RELEASE = 64 * 1024
MAX_DB = 64 * 1024 * 1024  # a package database larger than this is refused
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_OS_KEY = re.compile(r"^([A-Z0-9_]+)=(.*)$")


def _text(data: bytes, what: str) -> str:
    if b"\x00" in data:
        raise PackageDBError(f"{what} is binary, not text")
    return data.decode("utf-8", "replace")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    return re.sub(r"\\(.)", r"\1", value)


def read_os_release(content: IO[bytes]) -> OsRelease | None:
    """The distribution an ``os-release`` file names (None without ``ID``; see os-release(5))."""
    text = _text(read_capped(content, MAX_OS_RELEASE, "os-release"), "os-release")
    fields: dict[str, str] = {}
    for line in text.splitlines():
        found = _OS_KEY.match(line.strip())
        if found:
            fields[found.group(1)] = _unquote(found.group(2))[:MAX_FIELD]
    os_id = fields.get("ID", "").strip().lower()
    if not os_id or not re.match(r"^[a-z0-9._-]+$", os_id):
        return None
    return OsRelease(
        id=os_id,
        version_id=fields.get("VERSION_ID") or None,
        version_codename=fields.get("VERSION_CODENAME") or None,
        pretty_name=fields.get("PRETTY_NAME") or None,
    )


def _installed(status: str | None) -> bool:
    return status is None or status.split()[-1:] == ["installed"]


def _dpkg_paragraph(paragraph: Deb822, what: str) -> PackageRecord | None:
    if not _installed(paragraph.get("Status")):
        return None  # removed, config-files only, half-installed: not on the system
    name = check_name(paragraph.get("Package"), what)
    version = check_version(paragraph.get("Version"), what)
    source_name: str | None = None
    source_version: str | None = None
    source = paragraph.get("Source")
    if source:
        found = _SOURCE.match(source.strip())
        if found is None:
            raise PackageDBError(f"{what}: Source of {name} is malformed: {source[:80]!r}")
        source_name = check_name(found.group(1), what)
        if found.group(2):
            source_version = check_version(found.group(2), what)
    arch = paragraph.get("Architecture")
    return PackageRecord(
        RecordType.DEB,
        name,
        version,
        source_name=source_name if source_name != name else None,
        source_version=source_version if source_version not in (None, version) else None,
        arch=check_name(arch, what) if arch else None,
    )


def read_dpkg(content: IO[bytes]) -> list[PackageRecord]:
    """The installed packages of a dpkg ``status`` file or a distroless ``status.d`` file."""
    text = _text(read_capped(content, MAX_DB, "dpkg status"), "dpkg status")
    records: list[PackageRecord] = []
    from debian.deb822 import Deb822  # python-debian (~3 MiB with its imports): on the first dpkg database

    try:
        paragraphs = list(Deb822.iter_paragraphs(text.splitlines(), use_apt_pkg=False))
    except (ValueError, UnicodeError) as exc:
        raise PackageDBError(f"dpkg status: {exc}") from exc
    for paragraph in paragraphs:
        if not paragraph:
            continue
        record = _dpkg_paragraph(paragraph, "dpkg status")
        if record is not None:
            records.append(record)
    if text.strip() and not paragraphs:
        raise PackageDBError("dpkg status: no package paragraphs")
    return records


def read_apk(content: IO[bytes]) -> list[PackageRecord]:
    """The packages of Alpine's ``lib/apk/db/installed`` (``P:`` name, ``V:`` version, ``A:`` arch, ``o:``
    origin, i.e. the source package); paragraphs separated by blank lines."""
    text = _text(read_capped(content, MAX_DB, "apk installed"), "apk installed")
    records: list[PackageRecord] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if not line.strip():
                continue
            if len(line) < 2 or line[1] != ":":
                raise PackageDBError(f"apk installed: malformed line {line[:80]!r}")
            fields.setdefault(line[0], line[2:].strip())
        if not fields:
            continue
        name = check_name(fields.get("P"), "apk installed")
        version = check_version(fields.get("V"), "apk installed")
        origin = fields.get("o")
        arch = fields.get("A")
        records.append(
            PackageRecord(
                RecordType.APK,
                name,
                version,
                source_name=check_name(origin, "apk installed") if origin and origin != name else None,
                arch=check_name(arch, "apk installed") if arch else None,
            )
        )
    return records
