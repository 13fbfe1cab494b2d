"""Detector of RPM packages: the SQLite package database of current RPM-based distributions
(``/var/lib/rpm/rpmdb.sqlite``, ``/usr/lib/sysimage/rpm/rpmdb.sqlite``), one RPM header blob per row of its
``Packages`` table. The header format is small and documented (``rpm/lib/header.c``: an index of
``(tag, type, offset, count)`` entries then a data store); this module reads the few tags an inventory needs.

SQLite reads a file, so the database is copied from the layer stream into a temporary file in ``tmp_dir`` (at
most ``MAX_DB`` bytes) and opened read-only, immutable, without trusting its schema (and in defensive mode
where Python offers it, 3.12+). Limits: the Berkeley DB (``Packages``) and NDB formats of older distributions
are not read.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from pathlib import Path
from typing import IO

from dockyard.inventory.records import PackageDBError, PackageRecord, RecordType, check_name, check_version

RPMDB_PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
MAX_DB = 256 * 1024 * 1024
MAX_HEADER_ENTRIES = 100_000
NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1022, 1044
_STRING, _INT32, _STRING_ARRAY, _I18NSTRING = 6, 4, 8, 9
_ENTRY = struct.Struct(">iiii")


def parse_header(blob: bytes) -> dict[int, str | int]:
    """The NAME, VERSION, RELEASE, EPOCH, ARCH and SOURCERPM tags of an RPM header blob (an immutable
    header as rpmdb stores it: no magic). Raises ``PackageDBError`` if it is malformed."""
    if len(blob) < 8:
        raise PackageDBError("rpm header is truncated")
    count, data_len = struct.unpack(">ii", blob[:8])
    store = 8 + count * _ENTRY.size
    if not 0 < count <= MAX_HEADER_ENTRIES or data_len < 0 or store + data_len > len(blob):
        raise PackageDBError("rpm header is malformed")
    data = blob[store : store + data_len]
    values: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, n = _ENTRY.unpack_from(blob, 8 + i * _ENTRY.size)
        if tag not in (NAME, VERSION, RELEASE, EPOCH, ARCH, SOURCERPM):
            continue
        if not 0 <= offset < len(data):
            raise PackageDBError(f"rpm header tag {tag} points outside the data")
        if kind in (_STRING, _STRING_ARRAY, _I18NSTRING):
            end = data.find(b"\x00", offset)
            if end < 0:
                raise PackageDBError(f"rpm header tag {tag} is not terminated")
            values[tag] = data[offset:end].decode("utf-8", "replace")
        elif kind == _INT32 and n >= 1 and offset + 4 <= len(data):
            values[tag] = struct.unpack_from(">i", data, offset)[0]
    return values


def _source(sourcerpm: str) -> tuple[str, str] | None:
    """``glibc-2.34-60.el9.src.rpm`` → (``glibc``, ``2.34-60.el9``)."""
    stem = sourcerpm.removesuffix(".rpm").removesuffix(".src").removesuffix(".nosrc")
    parts = stem.rsplit("-", 2)
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], f"{parts[1]}-{parts[2]}"


def package_of(values: dict[int, str | int]) -> PackageRecord | None:
    """The package a parsed header describes; None for rpm's ``gpg-pubkey`` pseudo-packages."""
    name = check_name(str(values.get(NAME, "")), "rpm header")
    if name == "gpg-pubkey":
        return None
    epoch = values.get(EPOCH)
    evr = f"{values.get(VERSION, '')}-{values.get(RELEASE, '')}"
    version = check_version(f"{epoch}:{evr}" if isinstance(epoch, int) and epoch > 0 else evr, "rpm header")
    source = _source(str(values.get(SOURCERPM, "")))
    source_name = source_version = None
    if source is not None:
        source_name = check_name(source[0], "rpm header") if source[0] != name else None
        source_version = check_version(source[1], "rpm header") if source[1] != evr else None
    arch = values.get(ARCH)
    return PackageRecord(
        RecordType.RPM,
        name,
        version,
        source_name=source_name,
        source_version=source_version,
        arch=check_name(str(arch), "rpm header") if arch else None,
    )


def _open(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    defensive = getattr(sqlite3, "SQLITE_DBCONFIG_DEFENSIVE", None)  # Python 3.12+
    if defensive is not None and hasattr(conn, "setconfig"):
        conn.setconfig(defensive, True)
    conn.execute("PRAGMA trusted_schema = OFF")
    conn.execute("PRAGMA cell_size_check = ON")
    return conn


def read_rpmdb(content: IO[bytes], tmp_dir: Path | None = None) -> list[PackageRecord]:
    """The installed packages of an ``rpmdb.sqlite``. Raises ``PackageDBError``."""
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=tmp_dir, suffix=".sqlite") as spool:
        shutil.copyfileobj(content, spool, 1024 * 1024)
        if spool.tell() > MAX_DB:
            raise PackageDBError(f"rpmdb.sqlite is larger than {MAX_DB} bytes")
        spool.flush()
        records: list[PackageRecord] = []
        try:
            conn = _open(spool.name)
            try:
                for (blob,) in conn.execute("SELECT blob FROM Packages"):
                    if not isinstance(blob, bytes):
                        raise PackageDBError("rpmdb.sqlite holds a package that is not a header")
                    record = package_of(parse_header(blob))
                    if record is not None:
                        records.append(record)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise PackageDBError(f"rpmdb.sqlite cannot be read: {exc}") from exc
        return records
