"""Detector of Java packages: the ``META-INF/maven/<group>/<artifact>/pom.properties`` files Maven writes into
the archives it builds, read from ``.jar``/``.war``/``.ear`` files and, one level deep, from the archives they
carry (``WEB-INF/lib``, Spring Boot's ``BOOT-INF/lib``).

The archive is copied from the layer stream into a temporary spool (in memory up to ``SPOOL_IN_MEMORY``, then a
temporary file in ``tmp_dir``) because a zip is read from its end; only archives up to ``MAX_ARCHIVE`` bytes are
read (the candidate query skips larger ones), each ``pom.properties`` up to ``MAX_PROPERTIES`` bytes, nested
archives up to ``MAX_NESTED`` bytes, and archives with more than ``MAX_ZIP_ENTRIES`` entries are skipped.
An archive that is not a readable zip has no packages (it is not a package database). Limits: no fallback to
``MANIFEST.MF`` or the file name for archives without ``pom.properties`` (as Trivy does, with Maven Central look-ups).
"""

from __future__ import annotations

import io
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import IO

from dockyard.inventory.records import PackageDBError, PackageRecord, RecordType, check_name, check_version

MAX_ARCHIVE = 64 * 1024 * 1024
MAX_NESTED = 16 * 1024 * 1024
MAX_PROPERTIES = 64 * 1024
MAX_ZIP_ENTRIES = 100_000
SPOOL_IN_MEMORY = 8 * 1024 * 1024
ARCHIVE_SUFFIXES = (".jar", ".war", ".ear")


def is_archive(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def _properties(data: bytes) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in data.decode("latin-1").splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def _pom(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> PackageRecord | None:
    if info.file_size > MAX_PROPERTIES:
        return None
    with archive.open(info) as member:
        values = _properties(member.read(MAX_PROPERTIES))
    try:
        group = check_name(values.get("groupId"), "pom.properties")
        artifact = check_name(values.get("artifactId"), "pom.properties")
        version = check_version(values.get("version"), "pom.properties")
    except PackageDBError:
        return None
    return PackageRecord(RecordType.MAVEN, f"{group}:{artifact}", version)


def _archive_records(archive: zipfile.ZipFile, depth: int) -> list[PackageRecord]:
    infos = archive.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        return []
    records: list[PackageRecord] = []
    for info in infos:
        name = info.filename
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            record = _pom(archive, info)
            if record is not None and record not in records:
                records.append(record)
        elif depth == 0 and is_archive(name) and 0 < info.file_size <= MAX_NESTED:
            with archive.open(info) as member:
                nested = member.read(MAX_NESTED + 1)
            if len(nested) <= MAX_NESTED:
                for record in _zip_records(io.BytesIO(nested), depth + 1):
                    if record not in records:
                        records.append(record)
    return records


def _zip_records(spool: IO[bytes], depth: int) -> list[PackageRecord]:
    try:
        with zipfile.ZipFile(spool) as archive:
            return _archive_records(archive, depth)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError):
        return []  # not a readable zip (or an unsupported compression): no packages


def read_archive(content: IO[bytes], tmp_dir: Path | None = None) -> list[PackageRecord]:
    """The Maven packages a Java archive (and the archives inside it) declares."""
    if tmp_dir is not None:
        tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY, dir=str(tmp_dir) if tmp_dir else None) as spool:
        shutil.copyfileobj(content, spool, 1024 * 1024)
        if spool.tell() > MAX_ARCHIVE:
            return []
        spool.seek(0)
        return _zip_records(spool, 0)
