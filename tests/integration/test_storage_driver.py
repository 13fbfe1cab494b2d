"""The storage-driver contract, run against every driver (the S3 driver joins the parametrization)."""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from dockyard.storage.base import BlobStore, ObjectMissing, StorageError, UploadMissing
from dockyard.storage.factory import UnknownDriver, open_blob_store
from tests.support.blobstore import collect, digest_of, new_id
from tests.support.s3 import shared_moto_server

# The drivers are exercised directly, without a server or a DB: one pass (the embedded one) covers them.
pytestmark = pytest.mark.embedded_only

DriverFactory = Callable[[Path], BlobStore]


@functools.cache
def _suite_bucket() -> str:
    return shared_moto_server().make_bucket()


def _s3_store(root: Path) -> BlobStore:
    """A store under a key prefix of its own in a bucket of a real S3-protocol server (moto)."""
    moto = shared_moto_server()
    return open_blob_store(moto.storage_url(_suite_bucket(), prefix=f"suite/{uuid.uuid4().hex}"))


DRIVERS: dict[str, DriverFactory] = {
    "filesystem": lambda root: open_blob_store(f"file://{root}"),
    "s3": _s3_store,
}


@pytest.fixture(params=sorted(DRIVERS))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    blob_store = DRIVERS[request.param](tmp_path / "storage")
    yield blob_store
    await blob_store.close()


async def write(store: BlobStore, upload_id: str, offset: int, *chunks: bytes) -> None:
    writer = await store.open_upload(upload_id, offset)
    await writer.write(list(chunks))
    await writer.close()


async def test_upload_commit_read(store: BlobStore) -> None:
    upload_id = new_id()
    await store.create_upload(upload_id)
    await write(store, upload_id, 0, b"hello ", b"wor")
    await write(store, upload_id, 9, b"ld")
    data = b"hello world"
    digest = digest_of(data)
    assert await store.stat(digest) is None
    await store.commit_upload(upload_id, digest, len(data))
    assert await store.stat(digest) == len(data)
    assert await collect(store.read(digest)) == data
    assert await collect(store.read(digest, 6, 9)) == b"wor"
    assert upload_id not in await store.list_uploads()


async def test_reopen_discards_unflushed_tail(store: BlobStore) -> None:
    upload_id = new_id()
    await store.create_upload(upload_id)
    await write(store, upload_id, 0, b"abc")
    # A failed request wrote past the recorded offset; the next writer starts at the recorded offset.
    writer = await store.open_upload(upload_id, 3)
    await writer.write([b"GARBAGE"])
    await writer.abort()
    await write(store, upload_id, 3, b"def")
    assert await collect(store.read_upload(upload_id)) == b"abcdef"


async def test_commit_is_idempotent_for_existing_blob(store: BlobStore) -> None:
    data = b"same bytes"
    digest = digest_of(data)
    for _ in range(2):
        upload_id = new_id()
        await store.create_upload(upload_id)
        await write(store, upload_id, 0, data)
        await store.commit_upload(upload_id, digest, len(data))
    assert await collect(store.read(digest)) == data
    assert await store.list_uploads() == []


async def test_missing_upload(store: BlobStore) -> None:
    with pytest.raises(UploadMissing):
        await store.open_upload(new_id(), 0)
    with pytest.raises(UploadMissing):
        await store.commit_upload(new_id(), digest_of(b"x"), 1)
    await store.delete_upload(new_id())


async def test_missing_blob_reads_as_object_missing(store: BlobStore) -> None:
    """A committed blob whose bytes are gone is ``ObjectMissing`` (not an upload error), before any bytes."""
    digest = digest_of(b"never stored")
    with pytest.raises(ObjectMissing):
        await collect(store.read(digest))
    with pytest.raises(ObjectMissing):
        await collect(store.read(digest, 2, 5))
    with pytest.raises(UploadMissing):
        await collect(store.read_upload(new_id()))


async def test_open_beyond_stored_size_fails(store: BlobStore) -> None:
    upload_id = new_id()
    await store.create_upload(upload_id)
    with pytest.raises(StorageError):
        await store.open_upload(upload_id, 10)


async def test_delete_blob(store: BlobStore) -> None:
    upload_id = new_id()
    await store.create_upload(upload_id)
    await write(store, upload_id, 0, b"x")
    digest = digest_of(b"x")
    await store.commit_upload(upload_id, digest, 1)
    await store.delete(digest)
    assert await store.stat(digest) is None
    await store.delete(digest)


async def test_check_and_locate(store: BlobStore) -> None:
    await store.check()
    upload_id = new_id()
    await store.create_upload(upload_id)
    await write(store, upload_id, 0, b"located")
    digest = digest_of(b"located")
    await store.commit_upload(upload_id, digest, 7)
    location = await store.locate(digest)
    # A driver serves from a local file, redirects, or (neither) streams through read().
    if location.path is not None:
        assert location.path.read_bytes() == b"located"
    assert await collect(store.read(digest)) == b"located"


async def test_keys_reject_path_tricks(store: BlobStore) -> None:
    for bad in ("sha256:../../etc/passwd", "../x", "sha256:" + "g" * 64):
        with pytest.raises(ValueError, match="not a digest"):
            await store.stat(bad)
    with pytest.raises(ValueError, match="not an upload id"):
        await store.create_upload("../../evil")


def test_unknown_driver_is_an_error() -> None:
    with pytest.raises(UnknownDriver):
        open_blob_store("ftp://example/blobs")
