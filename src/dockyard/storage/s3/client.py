"""``BucketClient``: the S3 calls the driver makes on one bucket, through aiobotocore — the client's lifecycle, the
translation of every backend failure into ``StorageError``, listing, batch deletes, HEAD, ranged GETs that resume
after a dropped connection, and PUTs with ``Content-MD5``. It knows no key layout: callers pass full keys.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from dockyard.storage.base import StorageError, UploadMissing
from dockyard.storage.s3.segments import Piece

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import GetObjectRequestTypeDef

log = logging.getLogger("dockyard.storage")

_READ_CHUNK = 1024 * 1024
_DELETE_BATCH = 1000
_STREAM_RETRIES = 3
NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_STREAM_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError, aiohttp.ClientPayloadError)
BACKEND_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError)
"""Failures of the transport or of botocore itself (``ClientError`` is S3's answer, handled apart)."""


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def s3_errors(what: str) -> Iterator[None]:
    """Turn every backend failure into ``StorageError`` (after botocore's own retries have given up)."""
    try:
        yield
    except (ClientError, *BACKEND_ERRORS) as exc:
        raise StorageError(f"{what} failed: {describe(exc)}") from exc


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


class BucketClient:
    """One bucket through one lazily created aiobotocore client (safe for concurrent use)."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None,
        region: str | None,
        addressing: str,
        max_connections: int,
        credentials: tuple[str | None, str | None, str | None],
        max_attempts: int,
        connect_timeout: float,
        read_timeout: float,
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        self._config = AioConfig(
            region_name=region,
            signature_version="s3v4",
            s3={"addressing_style": addressing},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            max_pool_connections=max_connections,
            # Checksums only where S3 requires them (DeleteObjects): S3-compatible servers differ in what they
            # accept; integrity of what we send is covered by Content-MD5 on every PUT of data.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._credentials = credentials
        self._client: S3Client | None = None
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    async def client(self) -> S3Client:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                access_key, secret_key, token = self._credentials
                stack = AsyncExitStack()
                with s3_errors("creating the S3 client"):
                    self._client = await stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            endpoint_url=self.endpoint,
                            aws_access_key_id=access_key,
                            aws_secret_access_key=secret_key,
                            aws_session_token=token,
                            config=self._config,
                        )
                    )
                self._stack = stack
            return self._client

    async def close(self) -> None:
        async with self._client_lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()

    async def list_keys(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        """Keys and sizes of the objects under ``prefix``."""
        client = await self.client()
        with s3_errors(f"listing {prefix}"):
            async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj.get("Key", ""), obj.get("Size", 0)

    async def list_children(self, prefix: str, what: str) -> list[str]:
        """The names of the "directories" right under ``prefix`` (common prefixes without the trailing slash)."""
        client = await self.client()
        names: list[str] = []
        with s3_errors(what):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    names.append(common.get("Prefix", "")[len(prefix) :].rstrip("/"))
        return names

    async def delete_keys(self, keys: Sequence[str]) -> None:
        """Delete objects in batches; absent ones are no error."""
        if not keys:
            return
        client = await self.client()
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = keys[i : i + _DELETE_BATCH]
            with s3_errors("deleting objects"):
                response = await client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
                )
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in NOT_FOUND]
            if errors:
                first = errors[0]
                raise StorageError(
                    f"deleting {len(errors)} objects failed: {first.get('Key')}: {first.get('Code')} "
                    f"{first.get('Message', '')}"
                )

    async def delete(self, key: str) -> None:
        """Delete one object; absent is no error."""
        client = await self.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) not in NOT_FOUND:
                raise StorageError(f"deleting {key} failed: {describe(exc)}") from exc
        except BACKEND_ERRORS as exc:
            raise StorageError(f"deleting {key} failed: {describe(exc)}") from exc

    async def size(self, key: str) -> int | None:
        """HEAD: the object's size, or None if it does not exist."""
        client = await self.client()
        try:
            response = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if error_code(exc) in NOT_FOUND:
                return None
            raise StorageError(f"HEAD {key} failed: {describe(exc)}") from exc
        except BACKEND_ERRORS as exc:
            raise StorageError(f"HEAD {key} failed: {describe(exc)}") from exc
        return response["ContentLength"]

    async def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None:
        """PUT ``body`` as ``key`` with its ``Content-MD5`` (hashed in a worker thread)."""
        client = await self.client()
        md5 = await asyncio.to_thread(content_md5, body)
        with s3_errors(f"writing {key}"):
            if content_type is None:
                await client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentMD5=md5)
            else:
                await client.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentMD5=md5, ContentType=content_type
                )

    async def stream(
        self, key: str, start: int, end: int | None, *, missing: type[StorageError]
    ) -> AsyncIterator[bytes]:
        """GET ``[start, end)`` of ``key`` in chunks; resumes (same ETag) if the connection drops mid-body. An
        absent object raises ``missing``."""
        if end is not None and end <= start:
            return
        client = await self.client()
        position = start
        etag: str | None = None
        failures = 0
        while True:
            request: GetObjectRequestTypeDef = {"Bucket": self.bucket, "Key": key}
            if position or end is not None:
                request["Range"] = f"bytes={position}-{'' if end is None else end - 1}"
            if etag is not None:
                request["IfMatch"] = etag
            try:
                response = await client.get_object(**request)
            except ClientError as exc:
                code = error_code(exc)
                if code in NOT_FOUND:
                    raise missing(f"{key} is missing") from exc
                if code == "InvalidRange":  # starts at or past the end of the object: nothing to read
                    return
                raise StorageError(f"GET {key} failed: {describe(exc)}") from exc
            except BACKEND_ERRORS as exc:
                raise StorageError(f"GET {key} failed: {describe(exc)}") from exc
            etag = response.get("ETag") or etag
            try:
                async with response["Body"] as body:
                    async for chunk in body.iter_chunks(_READ_CHUNK):
                        position += len(chunk)
                        yield chunk
                return
            except _STREAM_ERRORS as exc:
                failures += 1
                if failures > _STREAM_RETRIES:
                    raise StorageError(f"reading {key} failed: {describe(exc)}") from exc
                log.warning("reading %s broke off at byte %d (%s); resuming", key, position, describe(exc))
                await asyncio.sleep(0.2 * 2**failures)
            except BACKEND_ERRORS as exc:
                raise StorageError(f"reading {key} failed: {describe(exc)}") from exc
            if end is not None and position >= end:
                return

    async def read_pieces(self, pieces: Sequence[Piece]) -> bytes:
        """The bytes of a few small upload pieces, in order (bounded: used for < 5 MiB tails and cut segments)."""
        out: list[bytes] = []
        for piece in pieces:
            got = 0
            async for chunk in self.stream(piece.key, 0, piece.length, missing=UploadMissing):
                out.append(chunk)
                got += len(chunk)
            if got != piece.length:
                raise StorageError(f"{piece.key} holds {got} bytes, expected {piece.length}")
        return b"".join(out)
