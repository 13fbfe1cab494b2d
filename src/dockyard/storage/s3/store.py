"""``S3BlobStore``: the ``BlobStore`` contract on one bucket (see ``dockyard.storage.s3`` for the design)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from dockyard.storage.base import BlobLocation, ObjectMissing, StorageError, UploadMissing
from dockyard.storage.paths import (
    UPLOADS_PREFIX,
    blob_key,
    is_upload_id,
    is_upload_marker,
    segment_start,
    upload_dir,
    upload_marker,
)
from dockyard.storage.s3.assemble import assemble
from dockyard.storage.s3.client import BucketClient, s3_errors
from dockyard.storage.s3.segments import (
    DEFAULT_PART_SIZE,
    MAX_SEGMENT,
    MIN_PART,
    Piece,
    UploadListing,
    chain,
    part_size_at,
    plan_reopen,
    truncate,
)
from dockyard.storage.s3.url import parse_s3_url
from dockyard.storage.s3.writer import S3UploadWriter

log = logging.getLogger("dockyard.storage")

_CHECK_TIMEOUT = 15.0


class S3BlobStore:
    """Blob store in an S3 bucket. See ``dockyard.storage.s3``."""

    scheme = "s3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint: str | None = None,
        region: str | None = None,
        addressing: str | None = None,
        redirect: bool = False,
        redirect_expires: int = 1200,
        part_size: int = DEFAULT_PART_SIZE,
        max_connections: int = 64,
        access_key: str | None = None,
        secret_key: str | None = None,
        session_token: str | None = None,
        max_attempts: int = 5,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
    ) -> None:
        if not MIN_PART <= part_size <= MAX_SEGMENT:
            raise ValueError(f"part_size must be between {MIN_PART} and {MAX_SEGMENT}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.redirect = redirect
        self.redirect_expires = redirect_expires
        self.part_size = part_size
        self._objects = BucketClient(
            bucket,
            endpoint=endpoint,
            region=region,
            addressing=addressing if addressing is not None else "path" if endpoint else "auto",
            max_connections=max_connections,
            credentials=(access_key, secret_key, session_token),
            max_attempts=max_attempts,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
        )

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        options = parse_s3_url(url)
        return cls(
            options.bucket,
            options.prefix,
            endpoint=options.endpoint,
            region=options.region,
            addressing=options.addressing,
            redirect=options.redirect,
            redirect_expires=options.redirect_expires,
            part_size=options.part_size,
            max_connections=options.max_connections,
        )

    def part_size_at(self, position: int) -> int:
        """Segment size for bytes at ``position`` (see ``segments.part_size_at``)."""
        return part_size_at(self.part_size, position)

    # -- keys: paths.py draws them, the store only adds its prefix --------------------------------------------------

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _blob(self, digest: str) -> str:
        return self._key(blob_key(digest))

    def _upload_dir(self, upload_id: str) -> str:
        return self._key(upload_dir(upload_id))

    async def _list_upload(self, directory: str) -> UploadListing:
        exists = False
        segments: list[Piece] = []
        garbage: list[str] = []
        async for key, size in self._objects.list_keys(directory):
            name = key[len(directory) :]
            start = segment_start(name)
            if is_upload_marker(name):
                exists = True
            elif start is not None:
                segments.append(Piece(key, start, size, size))
            else:
                garbage.append(key)
        linked, off_chain = chain(segments)
        return UploadListing(exists, linked, garbage + off_chain)

    # -- BlobStore ------------------------------------------------------------------------------------------------

    async def check(self) -> None:
        probe = self._key(UPLOADS_PREFIX + ".readyz")
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                client = await self._objects.client()
                with s3_errors(f"writing to bucket {self.bucket}"):
                    await client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
                    await client.delete_object(Bucket=self.bucket, Key=probe)
        except TimeoutError as exc:
            raise StorageError(f"bucket {self.bucket} did not answer within {_CHECK_TIMEOUT:.0f}s") from exc

    async def close(self) -> None:
        await self._objects.close()

    async def stat(self, digest: str) -> int | None:
        return await self._objects.size(self._blob(digest))

    async def locate(self, digest: str) -> BlobLocation:
        key = self._blob(digest)
        if not self.redirect:
            return BlobLocation()
        client = await self._objects.client()
        with s3_errors(f"presigning {key}"):
            url = await client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.redirect_expires
            )
        return BlobLocation(redirect_url=url)

    async def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._objects.stream(self._blob(digest), start, end, missing=ObjectMissing):
            yield chunk

    async def delete(self, digest: str) -> None:
        await self._objects.delete(self._blob(digest))

    async def create_upload(self, upload_id: str) -> None:
        marker = upload_marker(self._upload_dir(upload_id))
        client = await self._objects.client()
        with s3_errors("creating upload"):
            await client.put_object(Bucket=self.bucket, Key=marker, Body=b"")

    async def open_upload(self, upload_id: str, offset: int) -> S3UploadWriter:
        directory = self._upload_dir(upload_id)
        listing = await self._list_upload(directory)
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        if offset < 0 or offset > listing.stored:
            raise StorageError(f"upload {upload_id} holds {listing.stored} bytes, expected {offset}")
        reopen = plan_reopen(listing, offset)
        await self._objects.delete_keys(reopen.drop)
        return S3UploadWriter(self._objects, directory, offset, reopen.run, self.part_size)

    async def read_upload(self, upload_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        listing = await self._list_upload(self._upload_dir(upload_id))
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        for segment in listing.chain:
            low = max(start, segment.start)
            high = segment.end if end is None else min(end, segment.end)
            if low >= high:
                continue
            chunks = self._objects.stream(segment.key, low - segment.start, high - segment.start, missing=UploadMissing)
            async for chunk in chunks:
                yield chunk

    async def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        target = self._blob(digest)
        directory = self._upload_dir(upload_id)
        if await self._objects.size(target) is not None:
            await self._drop_upload(directory)
            return
        listing = await self._list_upload(directory)
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        if listing.stored < size:
            raise StorageError(f"upload {upload_id} holds {listing.stored} bytes, cannot commit {size}")
        await assemble(self._objects, target, truncate(listing.chain, size))
        await self._drop_upload(directory)

    async def put_blob(self, digest: str, data: bytes) -> None:
        # One PUT: an S3 object appears whole or not at all, and content-addressed keys make a repeat harmless.
        await self._objects.put(self._blob(digest), data)

    async def _drop_upload(self, directory: str) -> None:
        """Delete an upload after its commit; failures only leave garbage that expiry collects later."""
        try:
            await self._delete_upload_dir(directory)
        except StorageError as exc:
            log.warning("committed, but could not delete upload objects under %s: %s", directory, exc)

    async def _delete_upload_dir(self, directory: str) -> None:
        # The marker goes first: from then on the upload is missing even if deleting its segments fails half-way.
        await self._objects.delete_keys([upload_marker(directory)])
        await self._objects.delete_keys([key async for key, _ in self._objects.list_keys(directory)])

    async def delete_upload(self, upload_id: str) -> None:
        await self._delete_upload_dir(self._upload_dir(upload_id))

    async def list_uploads(self) -> list[str]:
        names = await self._objects.list_children(self._key(UPLOADS_PREFIX), "listing uploads")
        return [name for name in names if is_upload_id(name)]
