"""FilesystemBlobStore: blobs as files under a root directory.

Uploads are written in worker threads with early writeback (``sync_file_range``) so that the final fsync is
cheap, and committed by ``rename`` into the content-addressed tree after an fsync of file and directory.

Everything is private to the server's user whatever its umask: directories are created 0700 and files 0600 (a
committed blob is its renamed upload file).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from dockyard.storage.base import BlobLocation, ObjectMissing, StorageError, UploadMissing
from dockyard.storage.paths import BLOBS_PREFIX, UPLOADS_PREFIX, blob_key, upload_key

_READ_CHUNK = 1024 * 1024
_WRITEBACK_EVERY = 16 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


def _load_sync_file_range() -> object | None:
    try:
        # The process's own symbols include libc's: no ctypes.util.find_library("c"), which runs `ldconfig -p` in a
        # subprocess (a fork of the whole server, on every start).
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_sync_file_range = _load_sync_file_range()


def _start_writeback(fd: int, start: int, length: int) -> None:
    """Ask the kernel to start writing a range to disk now, without waiting (Linux only; best effort)."""
    if _sync_file_range is not None:
        _sync_file_range(fd, start, length, _SYNC_FILE_RANGE_WRITE)  # type: ignore[operator]


def _private_dirs(path: Path) -> None:
    """``mkdir -p`` with every directory it creates 0700 (``Path.mkdir`` gives the parents the umask's mode)."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    except FileNotFoundError:
        _private_dirs(path.parent)
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            return


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _create_private_file(path: Path) -> None:
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


class _FileUploadWriter:
    """Appends to one upload file; owns the file descriptor for the length of one request."""

    def __init__(self, fd: int, offset: int, fsync: bool) -> None:
        self._fd = fd
        self._pos = offset
        self._synced_to = offset
        self._fsync = fsync

    def _write_sync(self, chunks: Sequence[bytes]) -> None:
        views = [memoryview(c) for c in chunks if c]
        while views:
            written = os.writev(self._fd, views)
            self._pos += written
            while views and written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            if views and written:
                views[0] = views[0][written:]
        if self._fsync and self._pos - self._synced_to >= _WRITEBACK_EVERY:
            _start_writeback(self._fd, self._synced_to, self._pos - self._synced_to)
            self._synced_to = self._pos

    async def write(self, chunks: Sequence[bytes]) -> None:
        try:
            await asyncio.to_thread(self._write_sync, chunks)
        except OSError as exc:
            raise StorageError(f"writing upload failed: {exc.strerror}") from exc

    def _close_sync(self) -> None:
        # No fdatasync per request: the bytes survive a process crash in the page cache, writeback has started
        # already, and commit_upload syncs before the blob becomes visible. After a power loss a shorter file
        # than the DB recorded reads as a lost upload, and the client starts again.
        os.close(self._fd)

    async def close(self) -> None:
        try:
            await asyncio.to_thread(self._close_sync)
        except OSError as exc:
            raise StorageError(f"flushing upload failed: {exc.strerror}") from exc

    async def abort(self) -> None:
        await asyncio.to_thread(os.close, self._fd)


class FilesystemBlobStore:
    """Blob store on a local (or network) filesystem. See module docstring."""

    scheme = "file"

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root
        self._fsync = fsync
        _private_dirs(root / BLOBS_PREFIX)
        _private_dirs(root / UPLOADS_PREFIX)

    def _blob_path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def _upload_path(self, upload_id: str) -> Path:
        return self.root / upload_key(upload_id)

    async def check(self) -> None:
        def probe() -> None:
            probe_path = self.root / UPLOADS_PREFIX / ".readyz"
            probe_path.write_bytes(b"ok")
            probe_path.unlink()

        try:
            await asyncio.to_thread(probe)
        except OSError as exc:
            raise StorageError(f"storage root {self.root} is not writable: {exc.strerror}") from exc

    async def close(self) -> None:
        return None

    async def stat(self, digest: str) -> int | None:
        try:
            return os.stat(self._blob_path(digest)).st_size
        except FileNotFoundError:
            return None

    async def locate(self, digest: str) -> BlobLocation:
        return BlobLocation(path=self._blob_path(digest))

    async def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._blob_path(digest), start, end, ObjectMissing):
            yield chunk

    async def _read_file(
        self, path: Path, start: int, end: int | None, missing: type[StorageError]
    ) -> AsyncIterator[bytes]:
        try:
            fh = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError as exc:
            raise missing(f"{path.name} is missing") from exc
        try:
            await asyncio.to_thread(fh.seek, start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = _READ_CHUNK if remaining is None else min(_READ_CHUNK, remaining)
                data = await asyncio.to_thread(fh.read, size)
                if not data:
                    break
                if remaining is not None:
                    remaining -= len(data)
                yield data
        finally:
            fh.close()

    async def delete(self, digest: str) -> None:
        try:
            await asyncio.to_thread(os.unlink, self._blob_path(digest))
        except FileNotFoundError:
            return

    async def create_upload(self, upload_id: str) -> None:
        path = self._upload_path(upload_id)
        try:
            await asyncio.to_thread(_create_private_file, path)
        except OSError as exc:
            raise StorageError(f"cannot create upload: {exc.strerror}") from exc

    async def open_upload(self, upload_id: str, offset: int) -> _FileUploadWriter:
        path = self._upload_path(upload_id)

        def open_sync() -> int:
            fd = os.open(path, os.O_WRONLY)
            try:
                size = os.fstat(fd).st_size
                if size < offset:
                    raise UploadMissing(f"upload {upload_id} holds {size} bytes, expected {offset}: data lost")
                if size > offset:
                    os.ftruncate(fd, offset)
                os.lseek(fd, offset, os.SEEK_SET)
            except BaseException:
                os.close(fd)
                raise
            return fd

        try:
            fd = await asyncio.to_thread(open_sync)
        except FileNotFoundError as exc:
            raise UploadMissing(f"upload {upload_id} is missing") from exc
        except OSError as exc:
            raise StorageError(f"cannot open upload: {exc.strerror}") from exc
        return _FileUploadWriter(fd, offset, self._fsync)

    async def read_upload(self, upload_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._read_file(self._upload_path(upload_id), start, end, UploadMissing):
            yield chunk

    async def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        source = self._upload_path(upload_id)
        target = self._blob_path(digest)

        def commit_sync() -> None:
            if target.exists():
                source.unlink(missing_ok=True)
                return
            try:
                fd = os.open(source, os.O_WRONLY)
            except FileNotFoundError as exc:
                raise UploadMissing(f"upload {upload_id} is missing") from exc
            try:
                if os.fstat(fd).st_size != size:
                    os.ftruncate(fd, size)
                if self._fsync:
                    os.fdatasync(fd)
            finally:
                os.close(fd)
            _private_dirs(target.parent)
            os.replace(source, target)
            if self._fsync:
                _fsync_dir(target.parent)

        try:
            await asyncio.to_thread(commit_sync)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                raise UploadMissing(f"upload {upload_id} is missing") from exc
            raise StorageError(f"committing blob failed: {exc.strerror}") from exc

    async def put_blob(self, digest: str, data: bytes) -> None:
        target = self._blob_path(digest)
        scratch = self._upload_path(uuid.uuid4().hex)  # a crash mid-write leaves it as an orphaned upload file

        def put_sync() -> None:
            if target.exists():
                return
            fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if self._fsync:
                    os.fdatasync(fd)
            except BaseException:
                os.close(fd)
                scratch.unlink(missing_ok=True)
                raise
            os.close(fd)
            _private_dirs(target.parent)
            os.replace(scratch, target)
            if self._fsync:
                _fsync_dir(target.parent)

        try:
            await asyncio.to_thread(put_sync)
        except OSError as exc:
            raise StorageError(f"storing blob failed: {exc.strerror}") from exc

    async def delete_upload(self, upload_id: str) -> None:
        try:
            await asyncio.to_thread(os.unlink, self._upload_path(upload_id))
        except FileNotFoundError:
            return

    async def list_uploads(self) -> list[str]:
        return await asyncio.to_thread(
            lambda: [p.name for p in (self.root / UPLOADS_PREFIX).iterdir() if not p.name.startswith(".")]
        )
