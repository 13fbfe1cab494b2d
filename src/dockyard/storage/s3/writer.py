"""``S3UploadWriter``: appends to one upload from one request, as segments (see ``dockyard.storage.s3``).

It buffers up to a part size and PUTs each full buffer as a segment while the next one fills; what is left when
the request ends becomes a small piece, folded into a later segment once the pieces make a valid part.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from dockyard.storage.base import StorageError
from dockyard.storage.paths import upload_segment
from dockyard.storage.s3.client import BucketClient
from dockyard.storage.s3.segments import Piece, fold_run_on_close, part_size_at

log = logging.getLogger("dockyard.storage")

_WRITES_IN_FLIGHT = 1
_SETTLE_TIMEOUT = 30.0


class S3UploadWriter:
    """Appends to one upload from one request: buffers a part, PUTs it as a segment while the next one fills."""

    def __init__(self, objects: BucketClient, upload_dir: str, offset: int, run: list[Piece], part_size: int) -> None:
        self._objects = objects
        self._dir = upload_dir
        self._part_size = part_size
        self._position = offset  # upload offset of the first buffered byte
        self._run = run  # stored pieces just before ``offset`` to fold into the next segment written
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._inflight: list[asyncio.Task[None]] = []

    async def write(self, chunks: Sequence[bytes]) -> None:
        for chunk in chunks:
            if chunk:
                self._buffer.append(chunk)
                self._buffered += len(chunk)
        if self._buffered >= part_size_at(self._part_size, self._position):
            await self._flush(merge=True)

    async def _flush(self, *, merge: bool) -> None:
        run = self._run if merge else []
        head = await self._objects.read_pieces(run) if run else b""
        start = run[0].start if run else self._position
        body = b"".join([head, *self._buffer]) if head else b"".join(self._buffer)
        obsolete = [piece.key for piece in run if piece.start != start]
        self._position += self._buffered
        self._buffer, self._buffered, self._run = [], 0, []
        key = upload_segment(self._dir, start)
        self._inflight.append(asyncio.create_task(self._put_segment(key, body, obsolete)))
        while len(self._inflight) > _WRITES_IN_FLIGHT:
            await self._inflight.pop(0)

    async def _put_segment(self, key: str, body: bytes, obsolete: Sequence[str]) -> None:
        """PUT one segment, then drop the pieces it replaces (best effort: the next open collects leftovers)."""
        await self._objects.put(key, body)
        if obsolete:
            try:
                await self._objects.delete_keys(obsolete)
            except StorageError as exc:
                log.warning("could not delete replaced upload pieces: %s", exc)

    async def close(self) -> None:
        try:
            if self._buffered:
                await self._flush(merge=fold_run_on_close(self._run, self._buffered))
            while self._inflight:
                await self._inflight.pop(0)
        except BaseException:
            await self._settle()
            raise

    async def abort(self) -> None:
        self._buffer, self._buffered, self._run = [], 0, []
        await self._settle()

    async def _settle(self) -> None:
        """Let PUTs in flight finish (or give up on them) so that none lands after the next request opened."""
        tasks, self._inflight = self._inflight, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_SETTLE_TIMEOUT)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
