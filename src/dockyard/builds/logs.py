"""Build logs: written line by line to the database while a build runs (so any server can stream them live, whichever
builder runs the build), then archived whole to blob storage through the registry's ``BlobService`` by the
``builds.archive_log`` job (the lines are then deleted), and read back from either place.

Secrets are redacted before a line is stored: the writer is given every secret value of the build (the HTTPS
token, secret build args, the registry token) and replaces each with ``***``. A log is capped at
``MAX_LOG_BYTES``; past it, one line says so and the rest is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable

from sqlalchemy import delete, func, insert, select, update

from dockyard.db.engine import Database
from dockyard.models import Build, BuildLogLine
from dockyard.registry.blobs import BlobService

MAX_LOG_BYTES = 16 * 1024 * 1024
MAX_LINE = 16 * 1024
FLUSH_SECONDS = 0.5
FOLLOW_POLL_SECONDS = 0.5


class LogWriter:
    """Collects a build's lines and writes them in batches (every ``FLUSH_SECONDS`` or 500 lines)."""

    def __init__(self, db: Database, build_id: int, secrets: Iterable[str] = ()) -> None:
        self.db = db
        self.build_id = build_id
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self._pending: list[str] = []
        self._seq = 0
        self._bytes = 0
        self._capped = False
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        async with self.db.read() as conn:
            last = (
                await conn.execute(select(func.max(BuildLogLine.seq)).where(BuildLogLine.build_id == self.build_id))
            ).scalar_one_or_none()
        self._seq = int(last or 0)
        self._task = asyncio.create_task(self._flusher(), name=f"builds.log:{self.build_id}")

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line

    async def line(self, text: str) -> None:
        """One line of output (the executor's ``LogSink``)."""
        if self._capped:
            return
        text = self.redact(text.rstrip("\n"))[:MAX_LINE]
        self._bytes += len(text) + 1
        if self._bytes > MAX_LOG_BYTES:
            self._capped = True
            text = f"[log truncated at {MAX_LOG_BYTES} bytes]"
        self._pending.append(text)
        if len(self._pending) >= 500:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._pending:
                return
            batch, self._pending = self._pending, []
            rows = []
            for text in batch:
                self._seq += 1
                rows.append({"build_id": self.build_id, "seq": self._seq, "line": text})
            async with self.db.write() as conn:
                await conn.execute(insert(BuildLogLine), rows)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            await self.flush()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()


async def lines_after(db: Database, build_id: int, after: int, limit: int = 1000) -> list[tuple[int, str]]:
    async with db.read() as conn:
        rows = (
            await conn.execute(
                select(BuildLogLine.seq, BuildLogLine.line)
                .where(BuildLogLine.build_id == build_id, BuildLogLine.seq > after)
                .order_by(BuildLogLine.seq)
                .limit(limit)
            )
        ).all()
    return [(int(r.seq), str(r.line)) for r in rows]


async def archive(db: Database, blobs: BlobService, build_id: int) -> None:
    """Move a finished build's lines to blob storage (idempotent: an archived log is left alone)."""
    async with db.read() as conn:
        state = (await conn.execute(select(Build.log_digest).where(Build.id == build_id))).first()
    if state is None or state.log_digest is not None:
        return
    lines: list[str] = []
    after = 0
    while batch := await lines_after(db, build_id, after, 5000):
        lines += [text for _, text in batch]
        after = batch[-1][0]
    data = ("\n".join(lines) + ("\n" if lines else "")).encode()
    digest = await blobs.keep(data)
    async with db.write() as conn:
        await conn.execute(update(Build).where(Build.id == build_id).values(log_digest=digest, log_size=len(data)))
        await conn.execute(delete(BuildLogLine).where(BuildLogLine.build_id == build_id))


async def _archived_lines(blobs: BlobService, digest: str) -> list[str]:
    data = b"".join([chunk async for chunk in blobs.stream(digest)])
    return data.decode(errors="replace").splitlines()


async def read_log(
    db: Database, blobs: BlobService, build_id: int, *, follow: bool = False, poll: float = FOLLOW_POLL_SECONDS
) -> AsyncIterator[str]:
    """The build's log line by line; with ``follow``, new lines as they are written until the build has finished
    and every line was sent. Continues from the archive when the lines move there while it reads (the archive job
    deletes them in the transaction that names the archive, so a read that finds no line looks again)."""
    sent = 0
    while True:
        state, archived = await _status(db, build_id)
        if archived is not None:
            for text in (await _archived_lines(blobs, archived))[sent:]:
                yield text
            return
        if state is None:
            return
        batch = await lines_after(db, build_id, sent)
        for seq, text in batch:
            sent = seq
            yield text
        if batch:
            continue
        latest, archived = await _status(db, build_id)
        if archived is not None or (latest in FINISHED and state not in FINISHED):
            continue  # archived meanwhile, or finished just now: its last lines may have come in since
        if latest in FINISHED or latest is None or not follow:
            return
        await asyncio.sleep(poll)


FINISHED = ("succeeded", "failed", "cancelled")


async def _status(db: Database, build_id: int) -> tuple[str | None, str | None]:
    """(state, archived log digest) of the build; (None, None) when there is no such build."""
    async with db.read() as conn:
        row = (await conn.execute(select(Build.state, Build.log_digest).where(Build.id == build_id))).first()
    return (None, None) if row is None else (str(row.state), row.log_digest)
