"""The storage-driver contract every driver implements and the shared driver test suite exercises.

Blobs are immutable and content-addressed. An upload is a private, growable object that becomes a blob only
through ``commit``, which is atomic: a reader sees either no blob or the complete blob, never a prefix.
Drivers know nothing of repositories, manifests or the DB; digest verification is the caller's job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class StorageError(Exception):
    """A driver failed in a way the caller cannot fix (I/O error, backend unreachable)."""


class ObjectMissing(StorageError):
    """A committed blob's bytes are not in storage (deleted by garbage collection, or lost) although the caller
    expected them. Distinct from ``UploadMissing``: callers map the two to different protocol errors."""


class UploadMissing(StorageError):
    """The upload object does not exist (expired, cancelled, or never created)."""


@dataclass(frozen=True, slots=True)
class BlobLocation:
    """How to serve a blob: a local file for zero-copy sends, a redirect URL, or neither (stream via ``read``)."""

    path: Path | None = None
    redirect_url: str | None = None


class UploadWriter(Protocol):
    """Appends to one upload from one request. ``write`` may be called many times; ``close`` makes it durable."""

    async def write(self, chunks: Sequence[bytes]) -> None: ...

    async def close(self) -> None:
        """Make what was written visible to the next request on any replica (durability against power loss is
        promised only by ``commit_upload``). Must be called on success; ``abort`` otherwise."""

    async def abort(self) -> None:
        """Forget the request's unflushed state; the upload keeps only what ``close`` persisted earlier."""


class BlobStore(Protocol):
    """A blob store. All methods may raise ``StorageError``; none block the event loop."""

    scheme: str

    async def check(self) -> None:
        """Raise ``StorageError`` unless the backend is reachable and writable (used by ``/readyz``)."""

    async def close(self) -> None: ...

    async def stat(self, digest: str) -> int | None:
        """Size of the committed blob, or None."""

    async def locate(self, digest: str) -> BlobLocation:
        """Where a committed blob can be served from without passing through Python, if anywhere."""

    def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream bytes ``[start, end)`` of a committed blob. Raises ``ObjectMissing`` (on the first iteration,
        before any bytes) if the blob is not stored."""

    async def delete(self, digest: str) -> None:
        """Remove a committed blob; absent is not an error."""

    async def create_upload(self, upload_id: str) -> None: ...

    async def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """A writer that appends at ``offset``; anything stored past ``offset`` (a failed request's tail) is
        discarded. Raises ``UploadMissing``."""

    def read_upload(self, upload_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Stream an upload's stored bytes (to recompute a hash after a restart). Raises ``UploadMissing``."""

    async def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        """Atomically turn the first ``size`` bytes of the upload into blob ``digest`` and drop the upload.
        Idempotent when the blob already exists. Raises ``UploadMissing``."""

    async def put_blob(self, digest: str, data: bytes) -> None:
        """Store a small blob whole, durably and atomically (a reader sees no blob or all of it), in as few
        backend requests as the backend allows (one PUT on S3). The caller verified that ``data`` has ``digest``
        and keeps it small (it is in memory). Idempotent when the blob exists."""

    async def delete_upload(self, upload_id: str) -> None:
        """Drop an upload; absent is not an error."""

    async def list_uploads(self) -> list[str]:
        """Ids of upload objects present in storage (for expiry of abandoned sessions)."""
