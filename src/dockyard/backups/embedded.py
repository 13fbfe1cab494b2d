"""``dockyard backup`` and ``dockyard restore`` for the embedded deployment (SQLite in the data directory, blobs
under a ``file://`` storage root), taken while the server runs.

A backup is a directory::

    backup.json     what the backup holds (written last: a backup without it is incomplete)
    dockyard.db     the database, copied with SQLite's online backup API in one step: one read transaction, so
                    a consistent snapshot as of one commit, while writers go on (WAL)
    secret.key      the key that seals the token-signing keys in the database, when the data directory has one
    storage/blobs/  every blob the snapshot's ``blobs`` table lists, at its usual key, with ``backup.json``
                    listing each digest and size

The blobs are read after the snapshot. That is safe because a blob row is written only once its bytes are stored
and blobs are immutable and content-addressed; the one way a listed blob can be gone is garbage collection having
deleted it since the snapshot (it was unreferenced then, or became so): the backup then fails, naming the blobs,
and can be taken again. Blobs are copied (hashed as they go, so a corrupt file is caught) or, with ``hardlink``,
linked — instant and space-free on the same filesystem, but no protection against losing that disk.

A restore goes into a data directory with no database and no blobs: blobs first, the secret key, the database
last (under a temporary name, then renamed), so an interrupted restore never leaves a database whose blobs are
missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from dockyard import __version__
from dockyard.settings import Settings
from dockyard.storage.paths import BLOBS_PREFIX, blob_key

FORMAT = "dockyard-backup"
FORMAT_VERSION = 1
MANIFEST = "backup.json"
DATABASE = "dockyard.db"
SEALING_KEY_FILE = "secret.key"
STORAGE = "storage"
_CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore cannot be made; the message says why and what to do."""


@dataclass(frozen=True)
class Layout:
    """Where the embedded deployment's database and blobs are."""

    database: Path
    storage: Path
    secret_key: Path

    @classmethod
    def of(cls, settings: Settings) -> Layout:
        """The embedded layout of ``settings``. Raises ``BackupError`` for PostgreSQL or S3 (docs/backup.md)."""
        url = make_url(settings.effective_database_url)
        storage = urlsplit(settings.effective_storage_url)
        if url.get_backend_name() != "sqlite" or storage.scheme != "file":
            raise BackupError(
                "dockyard backup covers the embedded deployment (SQLite and file storage); back up PostgreSQL "
                "with pg_dump and S3 with bucket versioning (docs/backup.md)"
            )
        if not url.database:
            raise BackupError("the SQLite database has no file (an in-memory database cannot be backed up)")
        return cls(Path(url.database), Path(storage.path), settings.secret_key_path)

    def blob_path(self, digest: str) -> Path:
        return self.storage / blob_key(digest)


def _copy(source: Path, target: Path, *, hardlink: bool, fsync: bool, digest: str | None = None) -> int:
    """Copy (or link) ``source`` to ``target``; the size. With ``digest``, a copy is hashed and must match."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if hardlink:
        os.link(source, target)
        return target.stat().st_size
    hasher = hashlib.new(digest.split(":", 1)[0]) if digest else None
    size = 0
    with source.open("rb") as src, target.open("xb") as dst:
        while chunk := src.read(_CHUNK):
            if hasher is not None:
                hasher.update(chunk)
            dst.write(chunk)
            size += len(chunk)
        if fsync:
            dst.flush()
            os.fsync(dst.fileno())
    if hasher is not None and digest is not None and f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}" != digest:
        raise BackupError(f"{source} does not hash to {digest}: the stored blob is corrupt")
    return size


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return f"sha256:{hasher.hexdigest()}"


def _fsync_tree(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _snapshot(database: Path, target: Path) -> tuple[str | None, list[tuple[str, int]]]:
    """Copy ``database`` to ``target`` with the online backup API; the snapshot's schema revision and blobs."""
    if not database.exists():
        raise BackupError(f"no database at {database}")
    source = sqlite3.connect(database, timeout=60)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # pages=-1: the whole file in one step, so one read transaction (a consistent copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file (the server turns WAL on again)
        checked = copy.execute("PRAGMA quick_check").fetchone()
        if checked is None or checked[0] != "ok":
            raise BackupError(f"the copied database fails SQLite's check: {checked}")
        revision_row = copy.execute("SELECT version_num FROM alembic_version").fetchone()
        blobs = [(str(d), int(s)) for d, s in copy.execute("SELECT digest, size FROM blobs ORDER BY digest")]
    finally:
        copy.close()
        source.close()
    return (None if revision_row is None else str(revision_row[0])), blobs


def _empty_target(target: Path) -> None:
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty directory")
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    target.chmod(0o700)  # the backup holds the secret key and every account's password hash


def create_backup(
    settings: Settings, target: Path, *, hardlink: bool = False, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Back the embedded deployment of ``settings`` up into ``target`` (absent or empty), while it serves.
    Returns the backup's manifest (what ``backup.json`` holds, without the blob list). Raises ``BackupError``."""
    layout = Layout.of(settings)
    _empty_target(target)
    started = datetime.now(UTC)
    revision, blobs = _snapshot(layout.database, target / DATABASE)
    missing: list[str] = []
    for done, (digest, size) in enumerate(blobs, 1):
        source = layout.blob_path(digest)
        try:
            copied = _copy(
                source, target / STORAGE / blob_key(digest), hardlink=hardlink, fsync=settings.fsync, digest=digest
            )
        except FileNotFoundError:
            missing.append(digest)
            continue
        if copied != size:
            raise BackupError(f"blob {digest} is {copied} bytes in storage, {size} in the database")
        if progress is not None:
            progress(done, len(blobs))
    if missing:
        raise BackupError(
            f"{len(missing)} blob(s) of the snapshot were deleted from storage while the backup ran (garbage "
            f"collection); take the backup again: {', '.join(missing[:5])}"
        )
    secret = layout.secret_key.exists()
    if secret:
        _copy(layout.secret_key, target / SEALING_KEY_FILE, hardlink=False, fsync=settings.fsync)
        (target / SEALING_KEY_FILE).chmod(0o600)
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "dockyard_version": __version__,
        "created_at": started.isoformat(),
        "database": {"file": DATABASE, "revision": revision, "sha256": _sha256(target / DATABASE)},
        "secret_key": SEALING_KEY_FILE if secret else None,
        "storage": {"prefix": f"{STORAGE}/{BLOBS_PREFIX}", "hardlinked": hardlink},
        "blob_count": len(blobs),
        "blob_bytes": sum(size for _, size in blobs),
    }
    document = {**manifest, "blobs": [{"digest": digest, "size": size} for digest, size in blobs]}
    staging = target / f".{MANIFEST}.partial"
    staging.write_text(json.dumps(document, indent=1, sort_keys=True))
    if settings.fsync:
        _fsync_tree(target / DATABASE)
        _fsync_tree(staging)
    staging.rename(target / MANIFEST)
    if settings.fsync:
        _fsync_tree(target)
    return {"path": str(target.resolve()), **manifest}


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup in ``source``. Raises ``BackupError`` unless it is a complete backup."""
    try:
        document = json.loads((source / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{source} holds no complete backup (no {MANIFEST})") from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"cannot read {source / MANIFEST}: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise BackupError(f"{source / MANIFEST} is not a Dockyard backup manifest")
    if document.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format {document.get('format_version')} is not one this Dockyard restores")
    return document


def _stored_blobs(storage: Path) -> Iterator[Path]:
    blobs = storage / BLOBS_PREFIX
    if blobs.is_dir():
        yield from (path for path in blobs.rglob("*") if path.is_file())


def restore_backup(
    source: Path, settings: Settings, *, hardlink: bool = False, progress: Callable[[int, int], None] | None = None
) -> dict[str, Any]:
    """Restore the backup in ``source`` into the (empty) embedded deployment of ``settings``. Verifies the
    database file against the manifest and every copied blob against its digest. Raises ``BackupError``."""
    document = read_manifest(source)
    layout = Layout.of(settings)
    if layout.database.exists():
        raise BackupError(f"{layout.database} exists: restore into a data directory without a database")
    if next(_stored_blobs(layout.storage), None) is not None:
        raise BackupError(f"{layout.storage} already holds blobs: restore into empty storage")
    database = source / document["database"]["file"]
    if _sha256(database) != document["database"]["sha256"]:
        raise BackupError(f"{database} does not match the backup manifest (damaged or changed)")
    blobs = [(str(entry["digest"]), int(entry["size"])) for entry in document["blobs"]]
    for done, (digest, size) in enumerate(blobs, 1):
        try:
            copied = _copy(
                source / STORAGE / blob_key(digest),
                layout.blob_path(digest),
                hardlink=hardlink,
                fsync=settings.fsync,
                digest=digest,
            )
        except FileNotFoundError:
            raise BackupError(f"the backup lacks blob {digest}") from None
        if copied != size:
            raise BackupError(f"blob {digest} is {copied} bytes in the backup, {size} in its manifest")
        if progress is not None:
            progress(done, len(blobs))
    secret = document.get("secret_key")
    if secret:
        if layout.secret_key.exists():
            if layout.secret_key.read_bytes() != (source / secret).read_bytes():
                raise BackupError(f"{layout.secret_key} exists and differs from the backup's secret key")
        else:
            layout.secret_key.parent.mkdir(parents=True, exist_ok=True)
            _copy(source / secret, layout.secret_key, hardlink=False, fsync=settings.fsync)
            layout.secret_key.chmod(0o600)
    layout.database.parent.mkdir(parents=True, exist_ok=True)
    staging = layout.database.with_name(f".{layout.database.name}.restoring")
    staging.unlink(missing_ok=True)
    shutil.copyfile(database, staging)
    if settings.fsync:
        _fsync_tree(staging)
    staging.rename(layout.database)
    if settings.fsync:
        _fsync_tree(layout.database.parent)
    return {
        "path": str(source.resolve()),
        "data_dir": str(settings.data_dir.resolve()),
        "database": str(layout.database),
        "revision": document["database"]["revision"],
        "created_at": document["created_at"],
        "blob_count": len(blobs),
        "blob_bytes": sum(size for _, size in blobs),
        "secret_key": bool(secret),
    }
