"""``ObservedBlobStore``: a blob store that times each operation of the store it wraps and reports it (for the
storage-latency metric). Streamed reads (``read``, ``read_upload``) and upload writers pass through untimed: their
duration is the client's transfer, not the store's latency."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable

from dockyard.storage.base import BlobLocation, BlobStore, UploadWriter

StorageObserver = Callable[[str, float], None]
"""Called with (operation, seconds) after each operation, failed ones included."""


class ObservedBlobStore:
    """Wraps ``inner``; same contract (``BlobStore``)."""

    def __init__(self, inner: BlobStore, observe: StorageObserver) -> None:
        self.inner = inner
        self.scheme = inner.scheme
        self._observe = observe

    def _done(self, operation: str, started: float) -> None:
        self._observe(operation, time.perf_counter() - started)

    async def check(self) -> None:
        started = time.perf_counter()
        try:
            await self.inner.check()
        finally:
            self._done("check", started)

    async def close(self) -> None:
        await self.inner.close()

    async def stat(self, digest: str) -> int | None:
        started = time.perf_counter()
        try:
            return await self.inner.stat(digest)
        finally:
            self._done("stat", started)

    async def locate(self, digest: str) -> BlobLocation:
        started = time.perf_counter()
        try:
            return await self.inner.locate(digest)
        finally:
            self._done("locate", started)

    def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.read(digest, start, end)

    async def delete(self, digest: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.delete(digest)
        finally:
            self._done("delete", started)

    async def create_upload(self, upload_id: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.create_upload(upload_id)
        finally:
            self._done("create_upload", started)

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        started = time.perf_counter()
        try:
            return await self.inner.open_upload(upload_id, offset)
        finally:
            self._done("open_upload", started)

    def read_upload(self, upload_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.inner.read_upload(upload_id, start, end)

    async def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        started = time.perf_counter()
        try:
            await self.inner.commit_upload(upload_id, digest, size)
        finally:
            self._done("commit_upload", started)

    async def put_blob(self, digest: str, data: bytes) -> None:
        started = time.perf_counter()
        try:
            await self.inner.put_blob(digest, data)
        finally:
            self._done("put_blob", started)

    async def delete_upload(self, upload_id: str) -> None:
        started = time.perf_counter()
        try:
            await self.inner.delete_upload(upload_id)
        finally:
            self._done("delete_upload", started)

    async def list_uploads(self) -> list[str]:
        started = time.perf_counter()
        try:
            return await self.inner.list_uploads()
        finally:
            self._done("list_uploads", started)
