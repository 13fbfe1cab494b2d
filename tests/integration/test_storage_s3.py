"""S3 driver specifics against a real S3-protocol server (moto): multi-request uploads around S3's 5 MiB minimum
part size, truncation of a failed request's bytes, continuing on another replica, commits that fail or are cancelled
half-way (their multipart upload aborted), presigned redirects, the URL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from dockyard.core.digest import Digest
from dockyard.db.engine import Database
from dockyard.migrations.runner import upgrade
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.registry.uploads import ChunkSpec
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore, ObjectMissing, StorageError, UploadMissing
from dockyard.storage.factory import open_blob_store
from dockyard.storage.s3 import MIN_PART, S3BlobStore
from dockyard.storage.s3.assemble import assemble
from dockyard.storage.s3.segments import MAX_PARTS, Piece
from tests.support.blobstore import collect, digest_of, new_id
from tests.support.s3 import MotoServer, moto_server

# The drivers are exercised directly, without a server or a DB: one pass (the embedded one) covers them.
pytestmark = pytest.mark.embedded_only

__all__ = ["moto_server"]  # the session fixture, imported so pytest finds it here

MiB = 1024 * 1024
KiB = 1024


@pytest.fixture(scope="module")
def bucket(moto_server: MotoServer) -> str:
    return moto_server.make_bucket()


@pytest.fixture
def prefix() -> str:
    return f"t/{uuid.uuid4().hex}"


@pytest.fixture
def url(moto_server: MotoServer, bucket: str, prefix: str) -> str:
    return moto_server.storage_url(bucket, prefix)


@pytest.fixture
async def store(url: str) -> AsyncIterator[S3BlobStore]:
    blob_store = open_blob_store(url)
    assert isinstance(blob_store, S3BlobStore)
    yield blob_store
    await blob_store.close()


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def batches(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def request(store: BlobStore, upload_id: str, offset: int, data: bytes, batch: int = 4 * MiB) -> int:
    """One PATCH as the registry makes it: open at the recorded offset, write in batches, close."""
    writer = await store.open_upload(upload_id, offset)
    try:
        for part in batches(data, batch):
            await writer.write([part])
        await writer.close()
    except BaseException:
        await writer.abort()
        raise
    return offset + len(data)


def upload_keys(moto: MotoServer, bucket: str, prefix: str, upload_id: str) -> list[str]:
    return moto.keys(bucket, f"{prefix}/uploads/{upload_id}/")


def segment_sizes(moto: MotoServer, bucket: str, prefix: str, upload_id: str) -> list[int]:
    """Sizes of the upload's segment objects, in offset order."""
    listing = moto.client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/uploads/{upload_id}/s/")
    return [obj["Size"] for obj in sorted(listing.get("Contents", []), key=lambda o: o["Key"])]


# -- multi-request uploads ------------------------------------------------------------------------------------------


async def test_small_chunks_cross_the_part_minimum(
    store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str
) -> None:
    """300 KiB PATCHes (each far below 5 MiB) for 17 MiB: the tail pieces fold into ≥ 5 MiB segments as they go."""
    data = payload(17 * MiB + 123, seed=1)
    upload_id = new_id()
    await store.create_upload(upload_id)
    offset = 0
    for chunk in batches(data, 300 * KiB):
        offset = await request(store, upload_id, offset, chunk)
        sizes = segment_sizes(moto_server, bucket, prefix, upload_id)
        assert sum(sizes) == offset
        # Every segment before the trailing pieces is a valid multipart part; the pieces stay under 5 MiB.
        small = [i for i, size in enumerate(sizes) if size < MIN_PART]
        assert small == list(range(len(sizes) - len(small), len(sizes)))
        assert sum(sizes[i] for i in small) < MIN_PART
    assert len(segment_sizes(moto_server, bucket, prefix, upload_id)) >= 3  # crossed 5 MiB three times
    assert await collect(store.read_upload(upload_id)) == data
    assert await collect(store.read_upload(upload_id, 5 * MiB - 10, 5 * MiB + 10)) == data[5 * MiB - 10 : 5 * MiB + 10]
    digest = digest_of(data)
    await store.commit_upload(upload_id, digest, len(data))
    assert await store.stat(digest) == len(data)
    assert await collect(store.read(digest)) == data
    assert await collect(store.read(digest, 10 * MiB - 3, 15 * MiB + 3)) == data[10 * MiB - 3 : 15 * MiB + 3]
    assert upload_keys(moto_server, bucket, prefix, upload_id) == []


async def test_sixteen_mib_chunks(store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str) -> None:
    """A 37 MiB upload in 16 MiB PATCHes: full segments are PUT while the next fills; commit copies server-side."""
    data = payload(37 * MiB + 7, seed=2)
    upload_id = new_id()
    await store.create_upload(upload_id)
    offset = 0
    for chunk in batches(data, 16 * MiB):
        offset = await request(store, upload_id, offset, chunk)
    sizes = segment_sizes(moto_server, bucket, prefix, upload_id)
    assert sum(sizes) == len(data)
    assert all(size >= MIN_PART for size in sizes[:-1])
    digest = digest_of(data)
    await store.commit_upload(upload_id, digest, len(data))
    assert await store.stat(digest) == len(data)
    streamed = hashlib.sha256()
    async for chunk in store.read(digest):
        assert len(chunk) <= MiB
        streamed.update(chunk)
    assert "sha256:" + streamed.hexdigest() == digest
    assert await collect(store.read(digest, 16 * MiB - 1, 16 * MiB + 1)) == data[16 * MiB - 1 : 16 * MiB + 1]
    assert await store.list_uploads() == []


async def test_monolithic_single_request(store: S3BlobStore) -> None:
    """One request of 12 MiB in 1 MiB writes, as a monolithic POST makes it."""
    data = payload(12 * MiB, seed=3)
    upload_id = new_id()
    await store.create_upload(upload_id)
    await request(store, upload_id, 0, data, batch=MiB)
    digest = digest_of(data)
    await store.commit_upload(upload_id, digest, len(data))
    assert await collect(store.read(digest)) == data


async def test_continue_on_another_replica(url: str, moto_server: MotoServer, bucket: str, prefix: str) -> None:
    """Replicas share nothing but the bucket: each PATCH may land on another one, and any may commit."""
    replicas = [S3BlobStore.from_url(url) for _ in range(3)]
    try:
        data = payload(14 * MiB + 5, seed=4)
        upload_id = new_id()
        await replicas[0].create_upload(upload_id)
        offset = 0
        for n, chunk in enumerate(batches(data, 3 * MiB + 17)):
            replica = replicas[n % 3]
            # The replica that takes over recomputes the running hash from the stored bytes first.
            assert await collect(replica.read_upload(upload_id, 0, offset)) == data[:offset]
            offset = await request(replica, upload_id, offset, chunk)
        assert upload_id in await replicas[2].list_uploads()
        digest = digest_of(data)
        await replicas[1].commit_upload(upload_id, digest, len(data))
        assert await collect(replicas[2].read(digest)) == data
        assert upload_keys(moto_server, bucket, prefix, upload_id) == []
    finally:
        for replica in replicas:
            await replica.close()


# -- failed requests and truncation ---------------------------------------------------------------------------------


async def test_abort_keeps_only_closed_bytes(store: S3BlobStore) -> None:
    data = payload(3 * MiB, seed=5)
    upload_id = new_id()
    await store.create_upload(upload_id)
    offset = await request(store, upload_id, 0, data)
    writer = await store.open_upload(upload_id, offset)
    await writer.write([b"never closed" * 1000])
    await writer.abort()
    assert await collect(store.read_upload(upload_id)) == data
    with pytest.raises(StorageError):
        await store.open_upload(upload_id, offset + 1)


async def test_truncation_after_failed_request_that_flushed(
    store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str
) -> None:
    """A request that PUT whole segments and then failed left bytes past the recorded offset: they are cut off."""
    first = payload(3 * MiB, seed=6)
    upload_id = new_id()
    await store.create_upload(upload_id)
    offset = await request(store, upload_id, 0, first)
    # The failed request: its first flush folds the 3 MiB piece into a segment [0, 11 MiB), then more, then abort.
    writer = await store.open_upload(upload_id, offset)
    for part in batches(payload(20 * MiB, seed=7), 4 * MiB):
        await writer.write([part])
    await writer.abort()
    stored = await collect(store.read_upload(upload_id))
    assert len(stored) > offset
    assert stored[:offset] == first
    # The next request starts at the recorded offset: the segment cut there is rewritten, the rest dropped.
    second = payload(MiB + 1, seed=8)
    offset = await request(store, upload_id, offset, second)
    assert await collect(store.read_upload(upload_id)) == first + second
    assert sum(segment_sizes(moto_server, bucket, prefix, upload_id)) == offset
    # Truncation without writing anything: an empty request keeps what is stored.
    await request(store, upload_id, offset - 10, b"")
    data = (first + second)[: offset - 10]
    digest = digest_of(data)
    await store.commit_upload(upload_id, digest, len(data))
    assert await collect(store.read(digest)) == data


async def test_commit_truncates_to_size(store: S3BlobStore) -> None:
    """``commit_upload`` takes the first ``size`` bytes, also when ``size`` cuts a segment or a piece."""
    data = payload(9 * MiB, seed=9)
    for size in (9 * MiB - 1, 6 * MiB + 3, 6 * MiB, 8 * MiB, 2 * MiB, 0):
        upload_id = new_id()
        await store.create_upload(upload_id)
        await request(store, upload_id, 0, data[: 6 * MiB])
        await request(store, upload_id, 6 * MiB, data[6 * MiB :])
        digest = digest_of(data[:size])
        await store.commit_upload(upload_id, digest, size)
        assert await store.stat(digest) == size
        assert await collect(store.read(digest)) == data[:size]
    upload_id = new_id()
    await store.create_upload(upload_id)
    await request(store, upload_id, 0, b"short")
    with pytest.raises(StorageError):
        await store.commit_upload(upload_id, digest_of(b"short and more"), 14)


# -- a commit failing half-way ---------------------------------------------------------------------------------------


def pending_multipart_uploads(moto: MotoServer, bucket: str, prefix: str) -> list[str]:
    """The keys of the unfinished multipart uploads under ``prefix`` (S3 keeps, and bills, their parts)."""
    uploads = moto.client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return [upload["Key"] for upload in uploads if upload["Key"].startswith(f"{prefix}/")]


async def two_part_upload(store: S3BlobStore, moto: MotoServer, bucket: str, prefix: str) -> tuple[str, bytes]:
    """An upload whose commit is a multipart upload of two parts: a server-side copy of its 8 MiB segment (part 1)
    and its trailing 2 MiB piece, read back and sent (part 2)."""
    data = payload(10 * MiB + 5, seed=12)
    upload_id = new_id()
    await store.create_upload(upload_id)
    await request(store, upload_id, 0, data)
    assert segment_sizes(moto, bucket, prefix, upload_id) == [8 * MiB, 2 * MiB + 5]
    return upload_id, data


class PartTwoFails:
    """Hooks on the store's S3 client: part 2 of a commit starts only once part 1 (the copy) is done, then fails as
    S3 answers an internal error — or, with ``hang``, never ends (to be cancelled there). ``abort_fails`` makes the
    abort of the multipart upload fail too. ``remove()`` takes the hooks off."""

    def __init__(self, client: Any, *, hang: bool = False, abort_fails: bool = False) -> None:
        self.client = client
        self.hang = hang
        self.copied = asyncio.Event()  # part 1 is stored
        self.reached = asyncio.Event()  # part 2 was sent off
        self.hooks: list[tuple[str, Callable[..., Awaitable[None]]]] = [
            ("after-call.s3.UploadPartCopy", self._after_copy),
            ("before-parameter-build.s3.UploadPart", self._before_part),
        ]
        if abort_fails:
            self.hooks.append(("before-parameter-build.s3.AbortMultipartUpload", self._before_abort))
        for event, hook in self.hooks:
            client.meta.events.register(event, hook)

    def remove(self) -> None:
        for event, hook in self.hooks:
            self.client.meta.events.unregister(event, hook)

    async def _after_copy(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code == 200:
            self.copied.set()

    async def _before_part(self, params: dict[str, Any], **_: Any) -> None:
        assert params["PartNumber"] == 2
        self.reached.set()
        await self.copied.wait()
        if self.hang:
            await asyncio.Event().wait()
        raise ClientError(
            {"Error": {"Code": "InternalError", "Message": "We encountered an internal error"}}, "UploadPart"
        )

    async def _before_abort(self, **_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ServiceUnavailable", "Message": "Please reduce your request rate"}},
            "AbortMultipartUpload",
        )


async def test_a_commit_failing_half_way_is_aborted_and_can_be_done_again(
    store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str
) -> None:
    upload_id, data = await two_part_upload(store, moto_server, bucket, prefix)
    digest = digest_of(data)
    failing = PartTwoFails(await store._objects.client())
    try:
        with pytest.raises(StorageError, match=r"^uploading part 2 of \S+ failed: InternalError: We encountered"):
            await store.commit_upload(upload_id, digest, len(data))
    finally:
        failing.remove()
    assert failing.copied.is_set()  # failed half-way: after S3 had stored part 1
    assert pending_multipart_uploads(moto_server, bucket, prefix) == []  # aborted: no parts left behind
    assert await store.stat(digest) is None
    assert await collect(store.read_upload(upload_id)) == data  # the upload is intact: the commit can be retried
    await store.commit_upload(upload_id, digest, len(data))
    assert await collect(store.read(digest)) == data
    assert pending_multipart_uploads(moto_server, bucket, prefix) == []
    assert upload_keys(moto_server, bucket, prefix, upload_id) == []


async def test_a_commit_cancelled_half_way_is_aborted(
    store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str
) -> None:
    """A commit cancelled while its parts are sent (the request's client went away, the server stops): the
    multipart upload is aborted all the same, and the cancellation goes on."""
    upload_id, data = await two_part_upload(store, moto_server, bucket, prefix)
    digest = digest_of(data)
    hanging = PartTwoFails(await store._objects.client(), hang=True)
    try:
        commit = asyncio.create_task(store.commit_upload(upload_id, digest, len(data)))
        await asyncio.wait_for(asyncio.gather(hanging.copied.wait(), hanging.reached.wait()), 60)
        assert len(pending_multipart_uploads(moto_server, bucket, prefix)) == 1  # under way
        commit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await commit
    finally:
        hanging.remove()
    assert pending_multipart_uploads(moto_server, bucket, prefix) == []
    assert await store.stat(digest) is None
    assert await collect(store.read_upload(upload_id)) == data


async def test_a_commit_whose_abort_fails_too_reports_the_first_failure(
    store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str
) -> None:
    """The abort is best effort: when it fails as well, the caller learns why the commit failed, and the multipart
    upload is left to the bucket's lifecycle rule (the deployment docs ask for one)."""
    upload_id, data = await two_part_upload(store, moto_server, bucket, prefix)
    digest = digest_of(data)
    failing = PartTwoFails(await store._objects.client(), abort_fails=True)
    try:
        with pytest.raises(StorageError, match=r"^uploading part 2 of \S+ failed: InternalError"):
            await store.commit_upload(upload_id, digest, len(data))
    finally:
        failing.remove()
    left = pending_multipart_uploads(moto_server, bucket, prefix)
    assert left == [store._blob(digest)]
    for upload in moto_server.client.list_multipart_uploads(Bucket=bucket)["Uploads"]:
        if upload["Key"] in left:
            moto_server.client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    assert await store.stat(digest) is None
    assert await collect(store.read_upload(upload_id)) == data


async def test_a_blob_that_would_need_more_than_s3s_parts_is_refused_before_any_request() -> None:
    store = S3BlobStore("some-bucket", endpoint="http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    sent: list[str] = []
    try:
        client = await store._objects.client()
        client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
        pieces = [Piece(f"s/{n}", n * MIN_PART, MIN_PART, MIN_PART) for n in range(MAX_PARTS + 1)]
        with pytest.raises(StorageError, match=f"would need {MAX_PARTS + 1} parts, more than S3's {MAX_PARTS}"):
            await assemble(store._objects, "blobs/target", pieces)
        assert sent == []
    finally:
        await store.close()


# -- serving --------------------------------------------------------------------------------------------------------


async def test_presigned_redirect_downloads_the_blob(moto_server: MotoServer, bucket: str, prefix: str) -> None:
    store = open_blob_store(moto_server.storage_url(bucket, prefix, redirect="true"))
    try:
        data = payload(6 * MiB + 11, seed=10)
        upload_id = new_id()
        await store.create_upload(upload_id)
        await request(store, upload_id, 0, data)
        digest = digest_of(data)
        await store.commit_upload(upload_id, digest, len(data))
        location = await store.locate(digest)
        assert location.path is None
        assert location.redirect_url is not None
        assert "X-Amz-Signature=" in location.redirect_url
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(location.redirect_url)
            assert response.status_code == 200
            assert response.content == data
            ranged = await http.get(location.redirect_url, headers={"Range": "bytes=100-199"})
            assert ranged.status_code == 206
            assert ranged.content == data[100:200]
            tampered = location.redirect_url.replace(digest.split(":")[1], "0" * 64)
            assert (await http.get(tampered)).status_code in {403, 404}
    finally:
        await store.close()


async def test_without_redirect_locate_streams(store: S3BlobStore) -> None:
    upload_id = new_id()
    await store.create_upload(upload_id)
    await request(store, upload_id, 0, b"stream me")
    digest = digest_of(b"stream me")
    await store.commit_upload(upload_id, digest, 9)
    location = await store.locate(digest)
    assert location.path is None
    assert location.redirect_url is None
    assert await collect(store.read(digest, 7)) == b"me"
    assert await collect(store.read(digest, 9)) == b""
    assert await collect(store.read(digest, 20, 30)) == b""
    with pytest.raises(ObjectMissing):
        await collect(store.read(digest_of(b"absent")))


# -- housekeeping -----------------------------------------------------------------------------------------------------


async def test_list_and_delete_uploads(store: S3BlobStore, moto_server: MotoServer, bucket: str, prefix: str) -> None:
    ids = sorted(new_id() for _ in range(3))
    for upload_id in ids:
        await store.create_upload(upload_id)
        await request(store, upload_id, 0, payload(6 * MiB, seed=11))
    await store.check()  # the readiness probe object is not an upload
    assert sorted(await store.list_uploads()) == ids
    await store.delete_upload(ids[0])
    assert upload_keys(moto_server, bucket, prefix, ids[0]) == []
    assert sorted(await store.list_uploads()) == ids[1:]
    with pytest.raises(UploadMissing):
        await store.open_upload(ids[0], 0)
    with pytest.raises(UploadMissing):
        await collect(store.read_upload(ids[0]))


async def test_check_fails_for_missing_bucket(moto_server: MotoServer) -> None:
    store = open_blob_store(moto_server.storage_url("no-such-bucket-here"))
    try:
        with pytest.raises(StorageError, match="no-such-bucket-here"):
            await store.check()
    finally:
        await store.close()


async def test_unreachable_endpoint_is_a_storage_error() -> None:
    store = S3BlobStore("some-bucket", endpoint="http://127.0.0.1:9", max_attempts=1, connect_timeout=1)
    try:
        with pytest.raises(StorageError):
            await store.check()
        with pytest.raises(StorageError):
            await store.stat(digest_of(b"x"))
    finally:
        await store.close()


class _PeakRss:
    """The highest resident set size of this process while the block runs, sampled every 10 ms from /proc (the
    process's own peak, ``ru_maxrss``, may already be higher from earlier tests of this worker: it would hide
    growth)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="peak-rss", daemon=True)

    @staticmethod
    def now() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(0.01)

    def __enter__(self) -> _PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


@pytest.mark.slow
async def test_a_big_monolithic_upload_in_bounded_memory(store: S3BlobStore) -> None:
    """512 MiB through one writer in 4 MiB batches, then read back: this process's memory grows by a few part
    sizes (8 MiB each at this size), never by the blob."""
    block = os.urandom(4 * MiB)
    total = 128
    upload_id = new_id()
    await store.create_upload(upload_id)
    expected = hashlib.sha256()
    with _PeakRss() as rss:
        before = _PeakRss.now()
        writer = await store.open_upload(upload_id, 0)
        for n in range(total):
            chunk = n.to_bytes(8, "big") + block[8:]
            expected.update(chunk)
            await writer.write([chunk])
        await writer.close()
        digest = "sha256:" + expected.hexdigest()
        await store.commit_upload(upload_id, digest, total * 4 * MiB)
        assert await store.stat(digest) == total * 4 * MiB
        actual = hashlib.sha256()
        async for chunk in store.read(digest):
            actual.update(chunk)
    assert actual.hexdigest() == expected.hexdigest()
    grown = rss.peak - before
    assert grown < 192 * MiB, f"resident memory grew by {grown // MiB} MiB during a {total * 4} MiB upload"


# -- the factory ------------------------------------------------------------------------------------------------------


def test_factory_builds_s3_store() -> None:
    store = open_blob_store("s3://my-bucket/p?endpoint=http://127.0.0.1:9000")
    assert isinstance(store, S3BlobStore)
    assert store.scheme == "s3"
    assert (store.bucket, store.prefix, store.endpoint, store.redirect) == (
        "my-bucket",
        "p/",
        "http://127.0.0.1:9000",
        False,
    )


async def test_a_small_blob_costs_one_put_and_a_session_four_requests(url: str, tmp_path: Path) -> None:
    """A small blob pushed in one POST is one S3 request (the blob PUT); through a session (POST, then the closing
    PUT with the body, as docker and skopeo push) it is four: the session marker's PUT, the blob PUT, and the
    marker's delete (a DeleteObjects POST) and the LIST that finds no segments to delete. Big blobs keep the
    segment path."""
    store = open_blob_store(url)
    assert isinstance(store, S3BlobStore)
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'registry.db'}")
    await upgrade(db)
    registry = Registry.build(RegistryContext(db=db, store=store, settings=Settings(data_dir=tmp_path, open=True)))
    sent: list[str] = []
    client = await store._objects.client()
    client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.method))
    try:
        data = payload(300 * KiB, seed=7)
        digest = Digest.parse(digest_of(data))
        await registry.uploads.monolithic("small/one", digest, _body(data), ChunkSpec(None, len(data)))
        assert sent == ["PUT"]
        assert await collect(store.read(str(digest))) == data

        sent.clear()
        other = payload(200 * KiB, seed=8)
        other_digest = Digest.parse(digest_of(other))
        state = await registry.uploads.start("small/two")
        await registry.uploads.complete("small/two", state.id, other_digest, _body(other), ChunkSpec(None, len(other)))
        assert sorted(sent) == ["GET", "POST", "PUT", "PUT"]
        assert await collect(store.read(str(other_digest))) == other
        assert await store.list_uploads() == []
    finally:
        await store.close()
        await db.close()


async def _body(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 64 * KiB):
        yield data[i : i + 64 * KiB]
