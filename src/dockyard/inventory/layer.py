"""The detectors' pass over one layer, computed once per layer digest and stored (``layer_inventories``,
``layer_packages``): layers are shared between images, so a base layer is inventoried once for all of them.

``LayerInventories.ensure(digest)`` needs the layer's file index (``dockyard.layers.index``): it picks the
candidate files by path (and, for Go binaries, by exec bits and size) from the index rows, then reads only those
files' contents in one forward pass over the layer stream (``layers.tarstream.read_members``, in a worker thread),
never unpacking anything. Results are deterministic, so two processes computing the same layer at once both
insert the same rows; the first insert of the ``layer_inventories`` row wins and the other's is dropped.

A package database that cannot be read (``PackageDBError``) or a layer stream that breaks while its files are
read (``LayerFormatError``) is recorded as the layer's ``failed`` state — the blob is content-addressed, it will
never read better — and raised as ``Invalid("layer")`` to the image being inventoried.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import IO, Any

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore, insert_or_nothing
from dockyard.errors import Invalid
from dockyard.inventory import distro, gobinary, jars, language, rpmdb
from dockyard.inventory.records import OsRelease, PackageDBError, PackageRecord, RecordType
from dockyard.layers.bridge import through_thread
from dockyard.layers.tarstream import Kind, LayerFormatError, base_of, read_members
from dockyard.models import LayerFile, LayerIndex, LayerInventory, LayerPackage
from dockyard.registry.blobs import BlobService

log = logging.getLogger("dockyard.inventory")

VERSION = 1  # of the detectors: a layer inventoried by an older version is inventoried again
READY, FAILED = "ready", "failed"
OS_RELEASE = "os-release"
OS_RELEASE_PATHS = ("etc/os-release", "usr/lib/os-release")
DPKG_STATUS, DPKG_STATUS_D = "var/lib/dpkg/status", "var/lib/dpkg/status.d"
APK_INSTALLED = "lib/apk/db/installed"
MIN_GO_BINARY = 64 * 1024
MAX_GO_BINARY = 512 * 1024 * 1024
MAX_ERROR = 1000

Found = list[PackageRecord] | OsRelease | None
Reader = Callable[[IO[bytes]], Found]


@dataclass(frozen=True, slots=True)
class LayerRecord:
    """A record found in layer ``layer`` at ``path`` (normalised): a package, or the distribution an
    ``os-release`` file names."""

    layer: str
    path: str
    package: PackageRecord | None
    os: OsRelease | None


def reader_for(path: str, mode: int, size: int, tmp_dir: Path | None) -> Reader | None:
    """The detector that reads the file at ``path`` (normalised), or None for a file no detector reads."""
    if path in OS_RELEASE_PATHS:
        return distro.read_os_release
    if path == DPKG_STATUS or (
        path.startswith(DPKG_STATUS_D + "/") and "/" not in path[len(DPKG_STATUS_D) + 1 :] and "." not in base_of(path)
    ):
        return distro.read_dpkg
    if path == APK_INSTALLED:
        return distro.read_apk
    if path in rpmdb.RPMDB_PATHS:
        return partial(rpmdb.read_rpmdb, tmp_dir=tmp_dir)
    if language.is_python_metadata(path):
        return language.read_python
    if language.is_npm_package(path):
        return language.read_package_json
    if jars.is_archive(path):
        return partial(jars.read_archive, tmp_dir=tmp_dir) if size <= jars.MAX_ARCHIVE else None
    if mode & 0o111 and MIN_GO_BINARY <= size <= MAX_GO_BINARY:
        return gobinary.read_go_binary
    return None


def _candidates_where() -> Any:
    path = LayerFile.path
    return or_(
        path.in_((*OS_RELEASE_PATHS, DPKG_STATUS, APK_INSTALLED, *rpmdb.RPMDB_PATHS)),
        LayerFile.dir == DPKG_STATUS_D,
        path.like("%.dist-info/METADATA"),
        path.like("%.egg-info/PKG-INFO"),
        path.like("%.egg-info"),
        path.like("%node_modules/%/package.json"),
        and_(
            LayerFile.size <= jars.MAX_ARCHIVE,
            or_(*(func.lower(path).like(f"%{suffix}") for suffix in jars.ARCHIVE_SUFFIXES)),
        ),
        and_(
            LayerFile.kind == Kind.FILE,
            LayerFile.mode.op("&")(0o111) != 0,
            LayerFile.size.between(MIN_GO_BINARY, MAX_GO_BINARY),
        ),
    )


async def _candidates(conn: AsyncConnection, digest: str, tmp_dir: Path | None) -> dict[int, tuple[Reader, list[str]]]:
    """Tar position → (detector, the paths whose content is there) for the candidate files of layer ``digest``
    (a hard link is read at its target's position)."""
    rows = await conn.execute(
        select(LayerFile.path, LayerFile.kind, LayerFile.member, LayerFile.mode, LayerFile.size, LayerFile.link)
        .where(LayerFile.layer_digest == digest, LayerFile.kind.in_((Kind.FILE, Kind.HARDLINK)), _candidates_where())
        .order_by(LayerFile.seq)
    )
    found: dict[int, tuple[Reader, list[str]]] = {}
    links: list[tuple[str, str, int]] = []
    for row in rows:
        if row.kind == Kind.HARDLINK:
            if row.link:
                links.append((row.path, row.link, row.mode))
            continue
        reader = reader_for(row.path, row.mode, row.size, tmp_dir)
        if reader is not None:
            found.setdefault(row.member, (reader, []))[1].append(row.path)
    for path, target, mode in links:
        target_row = (
            await conn.execute(
                select(LayerFile.member, LayerFile.size)
                .where(LayerFile.layer_digest == digest, LayerFile.path == target, LayerFile.kind == Kind.FILE)
                .order_by(LayerFile.seq.desc())
                .limit(1)
            )
        ).first()
        if target_row is None:
            continue
        reader = reader_for(path, mode, target_row.size, tmp_dir)
        if reader is not None:
            found.setdefault(target_row.member, (reader, []))[1].append(path)
    return found


def _guarded(reader: Reader, paths: list[str]) -> Reader:
    """``reader`` whose failures name the file; anything unexpected a hostile file provokes is a
    ``PackageDBError`` too (recorded), never a crash of the job."""

    def read(content: IO[bytes]) -> Found:
        try:
            return reader(content)
        except LayerFormatError:
            raise
        except PackageDBError as exc:
            raise PackageDBError(f"/{paths[0]}: {exc}") from None
        except Exception as exc:
            raise PackageDBError(f"/{paths[0]}: cannot be read: {type(exc).__name__}: {exc}") from None

    return read


def _values(digest: str, seq: int, path: str, found: PackageRecord | OsRelease) -> dict[str, Any]:
    if isinstance(found, OsRelease):
        return {
            "layer_digest": digest,
            "seq": seq,
            "path": path,
            "type": OS_RELEASE,
            "name": found.id,
            "version": found.version_id or "",
            "source_name": found.version_codename,
            "source_version": None,
            "arch": None,
            "label": found.pretty_name,
        }
    return {
        "layer_digest": digest,
        "seq": seq,
        "path": path,
        "type": str(found.type),
        "name": found.name,
        "version": found.version,
        "source_name": found.source_name,
        "source_version": found.source_version,
        "arch": found.arch,
        "label": None,
    }


class LayerInventories:
    """Computes and finds per-layer inventories; safe for concurrent use (across processes through the DB)."""

    def __init__(self, db: Database, blobs: BlobService, *, tmp_dir: Path | None = None) -> None:
        self.db = db
        self.blobs = blobs
        self.tmp_dir = tmp_dir

    async def ensure(self, digest: str) -> None:
        """Make sure layer ``digest`` (whose file index is ready) is inventoried by this version. Raises
        ``Invalid("layer")`` if it holds a package database that cannot be read or its stream is corrupt,
        besides the blob stream's own errors (``NotFound``, ``StorageError``: nothing is recorded)."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    select(LayerInventory.version, LayerInventory.state, LayerInventory.error).where(
                        LayerInventory.layer_digest == digest
                    )
                )
            ).first()
            escape: tuple[int, str | None] | None = None
            if row is None or row.version < VERSION:
                candidates = await _candidates(conn, digest, self.tmp_dir)
                escape = (
                    await conn.execute(
                        select(LayerIndex.escapes, LayerIndex.escape_sample).where(LayerIndex.digest == digest)
                    )
                ).first()
            else:
                candidates = {}
        if row is not None and row.version >= VERSION:
            if row.state == FAILED:
                raise Invalid("layer", f"the layer cannot be inventoried: {row.error}", {"digest": digest})
            return
        error: str | None = None
        found: list[tuple[str, PackageRecord | OsRelease]] = []
        if escape is not None and escape[0] > 0:
            error = (
                f"{escape[0]} entries name a path outside the image root (the first: {escape[1]!r}); "
                "a container runtime refuses to unpack this layer"
            )[:MAX_ERROR]
        else:
            try:
                found = await self._read(digest, candidates)
            except (PackageDBError, LayerFormatError) as exc:
                error = str(exc)[:MAX_ERROR]
        await self._store(digest, found, error, replace=row is not None)
        if error is not None:
            log.info("layer %s: inventory failed: %s", digest, error)
            raise Invalid("layer", f"the layer cannot be inventoried: {error}", {"digest": digest})

    async def _read(
        self, digest: str, candidates: dict[int, tuple[Reader, list[str]]]
    ) -> list[tuple[str, PackageRecord | OsRelease]]:
        if not candidates:
            return []
        readers: dict[int, Reader] = {}
        for member, (reader, paths) in candidates.items():
            readers[member] = _guarded(reader, paths)
        results: list[tuple[str, PackageRecord | OsRelease]] = []
        stream = through_thread(self.blobs.stream(digest), lambda raw: read_members(raw, readers))
        async for member, result in stream:
            for path in candidates[member][1]:
                if isinstance(result, OsRelease):
                    results.append((path, result))
                elif result:
                    results.extend((path, record) for record in result)
        return results

    async def _store(
        self, digest: str, found: list[tuple[str, PackageRecord | OsRelease]], error: str | None, *, replace: bool
    ) -> None:
        async with self.db.write() as conn:
            if replace:  # an older version's result
                await conn.execute(delete(LayerInventory).where(LayerInventory.layer_digest == digest))
            inserted = await insert_ignore(
                conn,
                LayerInventory,
                {
                    "layer_digest": digest,
                    "version": VERSION,
                    "state": READY if error is None else FAILED,
                    "error": error,
                    "records": len(found),
                },
            )
            if inserted and found:
                statement = insert_or_nothing(conn, LayerPackage)
                values = [_values(digest, seq, path, record) for seq, (path, record) in enumerate(found)]
                for start in range(0, len(values), 1000):
                    await conn.execute(statement, values[start : start + 1000])

    async def records(self, conn: AsyncConnection, digests: list[str]) -> list[LayerRecord]:
        """The stored records of the layers ``digests`` (each inventoried), in layer then file order."""
        rows = await conn.execute(
            select(
                LayerPackage.layer_digest,
                LayerPackage.path,
                LayerPackage.type,
                LayerPackage.name,
                LayerPackage.version,
                LayerPackage.source_name,
                LayerPackage.source_version,
                LayerPackage.arch,
                LayerPackage.label,
            )
            .where(LayerPackage.layer_digest.in_(sorted(set(digests))))
            .order_by(LayerPackage.layer_digest, LayerPackage.seq)
        )
        return [_record(row) for row in rows]


def _record(row: Any) -> LayerRecord:
    if row.type == OS_RELEASE:
        os = OsRelease(row.name, row.version or None, row.source_name, row.label)
        return LayerRecord(row.layer_digest, row.path, None, os)
    package = PackageRecord(RecordType(row.type), row.name, row.version, row.source_name, row.source_version, row.arch)
    return LayerRecord(row.layer_digest, row.path, package, None)
