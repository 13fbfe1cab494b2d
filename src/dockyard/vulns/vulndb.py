"""The vulnerability database: importing OSV data (a JSON file, a directory of them, OSV's per-ecosystem
``all.zip`` export read member by member, or such an export fetched from a URL) and its status.

An import is **atomic**: every advisory it reads is written in one transaction, which also records the source;
a failure anywhere rolls it all back (the previous data keeps serving) and records the error on the source in a
transaction of its own. It is **incremental**: an advisory is replaced (its row and affected entries) only when
the imported ``modified`` is newer than the stored one. It returns the package keys whose advisories changed
(before and after), which ``dockyard.vulns.scanner`` uses to re-match only the images holding those packages.

Files are read and parsed in a worker thread, a batch at a time, so a server's event loop keeps serving during a
scheduled sync.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.db.statements import hold_lock
from dockyard.errors import Invalid
from dockyard.models import VulnAdvisory, VulnAffected, VulnSource
from dockyard.models.base import utcnow
from dockyard.vulns.matching import PackageKey
from dockyard.vulns.osv import Advisory, parse_advisory

log = logging.getLogger("dockyard.vulns")

BATCH = 500
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024  # one advisory; OSV's largest are a few hundred KiB
MAX_DOWNLOAD_BYTES = 2 * 1024 * 1024 * 1024


@dataclass
class ImportResult:
    source: str
    read: int = 0  # advisories read
    changed: int = 0  # new or newer than stored
    skipped: int = 0  # documents that are not valid OSV advisories
    seconds: float = 0.0
    keys: set[PackageKey] = field(default_factory=set)  # packages whose advisories changed


@dataclass(frozen=True, slots=True)
class SourceStatus:
    source: str
    imported_at: datetime
    advisories: int
    changed: int
    duration_seconds: float
    error: str | None


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    advisories: int
    affected: int
    withdrawn: int
    by_ecosystem: dict[str, int]
    last_update: datetime | None
    sources: list[SourceStatus]


def _documents(path: Path) -> Iterator[object]:
    """Every JSON document under ``path``: a file, a directory (recursively, ``*.json``) or a zip of them."""
    if path.is_dir():
        for child in sorted(path.rglob("*")):
            if child.is_file() and (child.suffix == ".json" or child.suffix == ".zip"):
                yield from _documents(child)
        return
    if zipfile.is_zipfile(path):
        with path.open("rb") as fh:
            yield from _zip_documents(fh)
        return
    if path.stat().st_size > MAX_DOCUMENT_BYTES:
        raise Invalid("vulndb", f"{path}: larger than {MAX_DOCUMENT_BYTES} bytes")
    yield from _decoded(path.read_bytes(), str(path))


def _zip_documents(fh: IO[bytes]) -> Iterator[object]:
    with zipfile.ZipFile(fh) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            if info.file_size > MAX_DOCUMENT_BYTES:
                log.warning("vulndb: %s is larger than %d bytes; skipped", info.filename, MAX_DOCUMENT_BYTES)
                continue
            with archive.open(info) as member:
                yield from _decoded(member.read(MAX_DOCUMENT_BYTES + 1), info.filename)


def _decoded(data: bytes, name: str) -> Iterator[object]:
    try:
        doc = json.loads(data)
    except ValueError:
        log.warning("vulndb: %s is not JSON; skipped", name)
        yield None
        return
    if isinstance(doc, list):  # a file holding several advisories
        yield from doc
    else:
        yield doc


def _take(documents: Iterator[object], n: int) -> list[object]:
    out: list[object] = []
    for doc in documents:
        out.append(doc)
        if len(out) >= n:
            break
    return out


async def hold_advisories(conn: AsyncConnection, *, exclusive: bool) -> None:
    """Serialise a transaction that changes advisories (``exclusive``) against the scans matching against them
    (shared), until it ends: a scan that read the advisories before an import committed must have stored its
    packages before that import's re-match reads them, or the image would miss the new advisories. SQLite's write
    transactions are serial already; PostgreSQL takes a transaction-level advisory lock."""
    await hold_lock(conn, "dockyard.vulndb", shared=not exclusive)


class VulnDatabase:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def import_path(
        self, path: Path, *, source: str | None = None, progress: Callable[[int], None] | None = None
    ) -> ImportResult:
        """Import an OSV file, directory or ``all.zip``; ``progress`` is told how many documents each batch read.
        Raises ``Invalid("vulndb")`` for a missing path."""
        if not await asyncio.to_thread(path.exists):
            raise Invalid("vulndb", f"{path}: no such file or directory")
        return await self._import(source or str(await asyncio.to_thread(path.resolve)), _documents(path), progress)

    async def import_url(self, url: str, client: httpx.AsyncClient) -> ImportResult:
        """Fetch an OSV export (a zip or a JSON file) from ``url`` into a temporary file and import it."""
        with tempfile.TemporaryFile() as spool:
            try:
                async with client.stream("GET", url) as response:
                    response.raise_for_status()
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_DOWNLOAD_BYTES:
                            raise Invalid("vulndb", f"{url}: larger than {MAX_DOWNLOAD_BYTES} bytes")
                        await asyncio.to_thread(spool.write, chunk)
            except httpx.HTTPError as exc:
                await self._record_failure(url, f"download failed: {exc}")
                raise Invalid("vulndb", f"{url}: download failed: {exc}") from exc
            spool.seek(0)
            if zipfile.is_zipfile(spool):
                spool.seek(0)
                return await self._import(url, _zip_documents(spool))
            spool.seek(0)
            return await self._import(url, _decoded(spool.read(MAX_DOCUMENT_BYTES + 1), url))

    async def _import(
        self, source: str, documents: Iterator[object], progress: Callable[[int], None] | None = None
    ) -> ImportResult:
        result = ImportResult(source)
        started = time.monotonic()
        try:
            async with self.db.write() as conn:
                await hold_advisories(conn, exclusive=True)
                while batch := await asyncio.to_thread(_take, documents, BATCH):
                    if progress is not None:
                        progress(len(batch))
                    advisories: dict[str, Advisory] = {}
                    for doc in batch:
                        try:
                            advisory = parse_advisory(doc)
                        except ValueError:
                            result.skipped += 1
                            continue
                        kept = advisories.get(advisory.id)
                        if kept is None or advisory.modified > kept.modified:
                            advisories[advisory.id] = advisory
                    result.read += len(advisories)
                    await self._apply(conn, source, list(advisories.values()), result)
                result.seconds = time.monotonic() - started
                await _upsert_source(conn, source, result, None)
        except Exception as exc:
            await self._record_failure(source, str(exc) or type(exc).__name__)
            raise
        return result

    async def _apply(
        self, conn: AsyncConnection, source: str, advisories: list[Advisory], result: ImportResult
    ) -> None:
        if not advisories:
            return
        ids = [a.id for a in advisories]
        found = await conn.execute(select(VulnAdvisory.id, VulnAdvisory.modified).where(VulnAdvisory.id.in_(ids)))
        stored = dict(found.all())
        newer = [a for a in advisories if a.id not in stored or a.modified > stored[a.id]]
        if not newer:
            return
        changed_ids = [a.id for a in newer]
        old = await conn.execute(
            select(VulnAffected.ecosystem, VulnAffected.package).where(VulnAffected.advisory_id.in_(changed_ids))
        )
        result.keys.update(PackageKey(e, p) for e, p in old.all())
        await conn.execute(delete(VulnAffected).where(VulnAffected.advisory_id.in_(changed_ids)))
        await conn.execute(delete(VulnAdvisory).where(VulnAdvisory.id.in_(changed_ids)))
        await conn.execute(
            insert(VulnAdvisory),
            [
                {
                    "id": a.id,
                    "aliases": json.dumps(a.aliases),
                    "summary": a.summary,
                    "modified": a.modified,
                    "published": a.published,
                    "withdrawn": a.withdrawn,
                    "severity": a.severity,
                    "score": a.score,
                    "vectors": json.dumps([{"type": v.type, "vector": v.vector, "score": v.score} for v in a.vectors]),
                    "source": source[:1024],
                }
                for a in newer
            ],
        )
        rows = [
            {
                "advisory_id": a.id,
                "ecosystem": e.ecosystem,
                "package": e.package,
                "ranges": json.dumps(e.ranges),
                "versions": json.dumps(e.versions),
                "fixed": json.dumps(e.fixed),
                "severity": e.severity,
            }
            for a in newer
            for e in a.affected
        ]
        if rows:
            await conn.execute(insert(VulnAffected), rows)
        result.keys.update(PackageKey(e.ecosystem, e.package) for a in newer for e in a.affected)
        result.changed += len(newer)

    async def _record_failure(self, source: str, error: str) -> None:
        async with self.db.write() as conn:
            found = await conn.execute(
                update(VulnSource).where(VulnSource.source == source[:1024]).values(error=error[:2000])
            )
            if found.rowcount == 0:
                await conn.execute(
                    insert(VulnSource).values(
                        source=source[:1024],
                        imported_at=utcnow(),
                        advisories=0,
                        changed=0,
                        duration_seconds=0.0,
                        error=error[:2000],
                    )
                )

    async def status(self) -> DatabaseStatus:
        async with self.db.read(consistent=True) as conn:
            advisories = (await conn.execute(select(func.count()).select_from(VulnAdvisory))).scalar_one()
            withdrawn = (
                await conn.execute(
                    select(func.count()).select_from(VulnAdvisory).where(VulnAdvisory.withdrawn.is_not(None))
                )
            ).scalar_one()
            per_ecosystem = (
                await conn.execute(select(VulnAffected.ecosystem, func.count()).group_by(VulnAffected.ecosystem))
            ).all()
            sources = (await conn.execute(select(VulnSource).order_by(VulnSource.source))).all()
        by_ecosystem: dict[str, int] = {}
        for ecosystem, count in per_ecosystem:
            base = ecosystem.split(":", 1)[0]
            by_ecosystem[base] = by_ecosystem.get(base, 0) + int(count)
        views = [
            SourceStatus(s.source, s.imported_at, s.advisories, s.changed, s.duration_seconds, s.error) for s in sources
        ]
        ok = [s.imported_at for s in views if s.error is None]
        return DatabaseStatus(
            advisories=int(advisories),
            affected=sum(by_ecosystem.values()),
            withdrawn=int(withdrawn),
            by_ecosystem=dict(sorted(by_ecosystem.items())),
            last_update=max(ok, default=None),
            sources=views,
        )


async def _upsert_source(conn: AsyncConnection, source: str, result: ImportResult, error: str | None) -> None:
    values = {
        "imported_at": utcnow(),
        "advisories": result.read,
        "changed": result.changed,
        "duration_seconds": result.seconds,
        "error": error,
    }
    found = await conn.execute(update(VulnSource).where(VulnSource.source == source[:1024]).values(**values))
    if found.rowcount == 0:
        await conn.execute(insert(VulnSource).values(source=source[:1024], **values))
