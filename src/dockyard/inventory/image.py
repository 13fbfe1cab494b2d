"""An image platform's packages from its layers' records: the merged filesystem decides which record files the
image holds — a record file counts only from the layer whose entry at its path is the one the container sees
(``dockyard.layers.merged``: an upper layer's file replaces a lower one's, a whiteout or an opaque directory
hides it) — and the image's ``os-release`` (``/etc/os-release``, a symlink to ``/usr/lib/os-release`` on most
distributions, else ``/usr/lib/os-release``) gives OS packages their ecosystem, release and Package URL.

Reads only the index rows on the paths of the record files and their ancestors, never a whole image's tree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.inventory.layer import OS_RELEASE_PATHS, LayerRecord
from dockyard.inventory.model import InstalledPackage
from dockyard.inventory.records import OsRelease, PackageRecord, RecordType
from dockyard.layers.merged import IndexedEntry, Node, chain_of, find, merge, rows_at
from dockyard.layers.tarstream import Kind, normalise, parent_of

MAX_SYMLINK_HOPS = 8

# os-release ID → OSV ecosystem (https://ossf.github.io/osv-schema/#defined-ecosystems) and Package URL namespace.
_DISTROS: dict[str, tuple[str, str]] = {
    "debian": ("Debian", "debian"),
    "ubuntu": ("Ubuntu", "ubuntu"),
    "alpine": ("Alpine", "alpine"),
    "rhel": ("Red Hat", "redhat"),
    "rocky": ("Rocky Linux", "rocky"),
    "almalinux": ("AlmaLinux", "almalinux"),
    "opensuse-leap": ("openSUSE", "opensuse"),
    "sles": ("SUSE", "suse"),
    "photon": ("Photon OS", "photon"),
    "wolfi": ("Wolfi", "wolfi"),
    "chainguard": ("Chainguard", "chainguard"),
    "mageia": ("Mageia", "mageia"),
}
_DEFAULT_DISTRO = {RecordType.DEB: "debian", RecordType.APK: "alpine"}
_LANGUAGE = {
    RecordType.PYPI: "PyPI",
    RecordType.NPM: "npm",
    RecordType.GOLANG: "Go",
    RecordType.MAVEN: "Maven",
}


@dataclass(frozen=True, slots=True)
class ImageInventoryResult:
    """What an image holds: its distribution (None without a readable ``os-release``) and its packages."""

    os: OsRelease | None
    packages: list[InstalledPackage]


def release_of(os: OsRelease) -> str | None:
    """The distro release as OSV's ecosystem suffix writes it: ``12`` (Debian), ``22.04`` (Ubuntu), ``v3.19``
    (Alpine: major.minor of ``VERSION_ID``), ``9`` (RPM distributions: the major version)."""
    version = os.version_id
    if not version:
        return None
    if os.id == "alpine":
        found = re.match(r"^(\d+)\.(\d+)", version)
        return f"v{found.group(1)}.{found.group(2)}" if found else None
    if os.id in ("debian", "ubuntu"):
        return version
    if os.id in _DISTROS:
        return version.split(".")[0]
    return version


def _os_package(record: PackageRecord, os: OsRelease | None) -> tuple[str, str, str | None, dict[str, str]]:
    """(ecosystem, purl namespace, release, distro qualifiers) of an OS package."""
    os_id = os.id if os is not None else _DEFAULT_DISTRO.get(record.type, "")
    ecosystem, namespace = _DISTROS.get(os_id, (os_id or record.type.value, os_id or record.type.value))
    release = release_of(os) if os is not None else None
    qualifiers = {"distro": f"{os_id}-{os.version_id}"} if os is not None and os.version_id else {}
    return ecosystem, namespace, release, qualifiers


def _purl_parts(name: str) -> tuple[str | None, str]:
    namespace, _, last = name.rpartition("/")
    return namespace or None, last


def installed(record: PackageRecord, os: OsRelease | None, layer: str, path: str) -> InstalledPackage:
    """The ``InstalledPackage`` a layer record stands for in an image whose distribution is ``os``."""
    from packageurl import PackageURL  # on the first inventory, not in every server process

    release: str | None = None
    qualifiers: dict[str, str] = {}
    if record.arch:
        qualifiers["arch"] = record.arch
    if record.type in (RecordType.DEB, RecordType.APK, RecordType.RPM):
        ecosystem, namespace, release, distro = _os_package(record, os)
        qualifiers.update(distro)
        version = record.version
        if record.type is RecordType.RPM and ":" in version:
            epoch, _, version = version.partition(":")
            qualifiers["epoch"] = epoch
        purl = PackageURL(record.type.value, namespace, record.name, version, qualifiers or None)
    elif record.type is RecordType.PYPI:
        ecosystem = _LANGUAGE[record.type]
        purl = PackageURL("pypi", None, re.sub(r"[-_.]+", "-", record.name).lower(), record.version)
    elif record.type is RecordType.MAVEN:
        ecosystem = _LANGUAGE[record.type]
        group, _, artifact = record.name.partition(":")
        purl = PackageURL("maven", group, artifact, record.version)
    else:  # npm ("@scope/name") and Go (module path)
        ecosystem = _LANGUAGE[record.type]
        namespace_part, name_part = _purl_parts(record.name)
        purl = PackageURL(record.type.value, namespace_part, name_part, record.version)
    return InstalledPackage(
        ecosystem=ecosystem,
        name=record.name,
        version=record.version,
        purl=purl.to_string(),
        layer=layer,
        path=f"/{path}",
        release=release,
        source_name=record.source_name,
        source_version=record.source_version,
    )


async def _rows(conn: AsyncConnection, layers: Sequence[str], paths: set[str]) -> dict[str, list[IndexedEntry]]:
    """The rows at ``paths`` and at their ancestors (what ``merge`` needs to place them)."""
    return await rows_at(conn, layers, {part for path in paths for part in chain_of(path)})


def _visible(root: Node, path: str) -> IndexedEntry | None:
    node = find(root, path)
    return node.entry if node is not None else None


class SymlinkLoop(Exception):
    """A path the inventory reads leads round a loop of symbolic links (the image's inventory fails)."""


async def _os_file(
    conn: AsyncConnection, layers: Sequence[str], paths: set[str], root: Node
) -> tuple[Node, tuple[str, str] | None]:
    """The (layer, path) of the regular file the image's ``os-release`` is, following symlinks. Raises
    ``SymlinkLoop`` after ``MAX_SYMLINK_HOPS`` links."""
    for start in OS_RELEASE_PATHS:
        path, link_layer = start, ""
        for _ in range(MAX_SYMLINK_HOPS):
            if path not in paths:
                paths.add(path)
                root = merge(layers, await _rows(conn, layers, paths))
            entry = _visible(root, path)
            if entry is None:
                break
            if entry.kind == Kind.SYMLINK and entry.link:
                link, link_layer = entry.link, entry.layer
                path = normalise(link if link.startswith("/") else f"{parent_of(path)}/{link}")
                continue
            if entry.kind in (Kind.FILE, Kind.HARDLINK):
                return root, (entry.layer, path)
            break
        else:
            raise SymlinkLoop(f"layer {link_layer}: /{start}: too many levels of symbolic links (a loop, at /{path})")
    return root, None


async def merge_image(conn: AsyncConnection, layers: Sequence[str], records: list[LayerRecord]) -> ImageInventoryResult:
    """The packages of the image made of ``layers`` (bottom first) from its layers' ``records``. Raises
    ``SymlinkLoop``."""
    by_file: dict[tuple[str, str], list[LayerRecord]] = {}
    for record in records:
        by_file.setdefault((record.layer, record.path), []).append(record)
    paths = {path for _, path in by_file} | set(OS_RELEASE_PATHS)
    root = merge(layers, await _rows(conn, layers, paths))
    root, os_file = await _os_file(conn, layers, paths, root)
    os = next((r.os for r in by_file.get(os_file, ()) if r.os is not None), None) if os_file else None
    packages: list[InstalledPackage] = []
    for (layer, path), found in by_file.items():
        entry = _visible(root, path)
        if entry is None or entry.layer != layer:
            continue  # hidden by a whiteout, or replaced by an upper layer's file
        packages.extend(installed(r.package, os, layer, path) for r in found if r.package is not None)
    packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path))
    return ImageInventoryResult(os, packages)
