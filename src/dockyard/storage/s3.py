"""S3BlobStore: blobs as objects in an S3 (or S3-compatible) bucket, through aiobotocore.

Committed blobs live at ``<prefix>/blobs/<alg>/<xx>/<hex>``, exactly as on the filesystem. S3 objects are immutable
and cannot be appended to, and the parts of an unfinished S3 multipart upload cannot be read back, so an upload is
kept as a chain of ordinary objects (*segments*) under its own prefix, each named by the upload offset of its first
byte::

    uploads/<id>/info                      marker: the upload exists (create_upload)
    uploads/<id>/s/00000000000000000000    segment holding bytes [0, n0)
    uploads/<id>/s/<n0 zero-padded>        segment holding bytes [n0, n1) …

The stored upload is the chain that starts at 0 and continues at each segment's end; objects off the chain are
leftovers of an interrupted request and are deleted by the next ``open_upload``. Because the state is all in the
bucket, any replica can continue an upload, and nothing is kept on local disk or in memory between requests.

A writer buffers up to a part size (8 MiB by default, growing for very large uploads so that a blob never needs more
than S3's 10,000 parts) and PUTs each full buffer as a segment while it receives the next one. What is left when the
request ends is PUT as a small segment (a *piece*). Pieces of later requests pile up after it until, together with
the new bytes, they reach S3's 5 MiB minimum part size; then they are read back (less than 5 MiB) and rewritten with
the new bytes as one segment. So every segment but the trailing few pieces is a valid multipart part, small-chunk
uploads cost about two PUTs of each byte instead of one rewrite of a growing tail per request, and memory per writer
stays at about two part sizes. Opening at an offset drops the segments that start at or past it (a failed request
stored more than the registry recorded); a segment cut by the offset is read back up to it and rewritten, with any
pieces before it, as one segment under the first one's key — a single atomic PUT as far as the chain is concerned —
but only once the new request has written something: until then the stored prefix is untouched, so ``abort`` loses
nothing that an earlier ``close`` persisted.

``commit_upload`` assembles the blob server-side: a multipart upload to the final key whose parts are
``UploadPartCopy`` ranges of the segments, with only the trailing pieces (< 5 MiB) passing through the process; a
blob held in a single segment is one ``CopyObject``, a small one a single PUT. Completing a multipart upload, like a
PUT, is atomic for readers. Afterwards the upload's objects are deleted.

Requires strong read-after-write and list consistency (AWS S3, MinIO, Ceph RGW, and moto all provide it). Configure
a bucket lifecycle rule that aborts incomplete multipart uploads: a crash in the middle of a commit leaves one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
import math
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

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

from dockyard.storage.base import BlobLocation, StorageError, UploadMissing
from dockyard.storage.paths import UPLOADS_PREFIX, blob_key, upload_key

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef, GetObjectRequestTypeDef

log = logging.getLogger("dockyard.storage")

MiB = 1024 * 1024
GiB = 1024 * MiB
MIN_PART = 5 * MiB
"""S3's minimum size of every multipart part but the last."""
MAX_PART = 5 * GiB
"""S3's maximum size of one part (and of one PUT or CopyObject)."""
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB
_MAX_SEGMENT = 512 * MiB
_GROWTH_DIVISOR = 1024
_READ_CHUNK = 1024 * 1024
_DELETE_BATCH = 1000
_COMMIT_CONCURRENCY = 4
_WRITES_IN_FLIGHT = 1
_STREAM_RETRIES = 3
_CHECK_TIMEOUT = 15.0
_SETTLE_TIMEOUT = 30.0
_MARKER = "info"
_SEGMENTS = "s/"
_UPLOAD_ID_RE = re.compile(r"^[a-f0-9]{32}$")
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_STREAM_ERRORS = (ResponseStreamingError, ReadTimeoutError, IncompleteReadError, aiohttp.ClientPayloadError)


# -- errors ---------------------------------------------------------------------------------------------------------


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')}: {error.get('Message', '')}".strip()
    return str(exc) or type(exc).__name__


@contextlib.contextmanager
def _s3_errors(what: str) -> Iterator[None]:
    """Turn every backend failure into ``StorageError`` (after botocore's own retries have given up)."""
    try:
        yield
    except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as exc:
        raise StorageError(f"{what} failed: {_describe(exc)}") from exc


# -- configuration --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class S3Options:
    """What a ``s3://bucket/prefix?…`` storage URL says."""

    bucket: str
    prefix: str = ""
    endpoint: str | None = None
    region: str | None = None
    addressing: str | None = None
    redirect: bool = False
    redirect_expires: int = 1200
    part_size: int = DEFAULT_PART_SIZE
    max_connections: int = 64


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _parse_bool(name: str, value: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f"storage URL parameter {name}={value!r} is not a boolean")


def _parse_int(name: str, value: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"storage URL parameter {name}={value!r} is not an integer") from None
    if not low <= number <= high:
        raise ValueError(f"storage URL parameter {name}={number} is outside [{low}, {high}]")
    return number


def parse_s3_url(url: str) -> S3Options:
    """Parse ``s3://bucket/prefix?endpoint=…&region=…&addressing=path|virtual&redirect=true&part_size=…``.

    Credentials are never part of the URL: they come from the standard AWS chain (``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY``, a profile, or an instance role).
    """
    parts = urlsplit(url)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3:// URL: {url!r}")
    if parts.username or parts.password:
        raise ValueError("put S3 credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, not in the storage URL")
    bucket = parts.hostname or ""
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
        raise ValueError(f"storage URL {url!r} does not name a valid bucket")
    params: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in params:
            raise ValueError(f"storage URL parameter {name!r} is given twice")
        params[name] = value
    options: dict[str, Any] = {"bucket": bucket, "prefix": parts.path.strip("/")}
    for name, value in params.items():
        if name == "endpoint":
            endpoint = urlsplit(value)
            if endpoint.scheme not in {"http", "https"} or not endpoint.netloc:
                raise ValueError(f"storage URL parameter endpoint={value!r} is not an http(s) URL")
            options["endpoint"] = value
        elif name == "region":
            options["region"] = value or None
        elif name == "addressing":
            if value not in {"path", "virtual", "auto"}:
                raise ValueError(f"storage URL parameter addressing={value!r} must be path or virtual")
            options["addressing"] = value
        elif name == "redirect":
            options["redirect"] = _parse_bool(name, value)
        elif name == "redirect_expires":
            options["redirect_expires"] = _parse_int(name, value, 1, 7 * 24 * 3600)
        elif name == "part_size":
            options["part_size"] = _parse_int(name, value, MIN_PART, _MAX_SEGMENT)
        elif name == "max_connections":
            options["max_connections"] = _parse_int(name, value, 1, 4096)
        else:
            raise ValueError(f"unknown storage URL parameter {name!r} for the s3 driver")
    return S3Options(**options)


# -- upload layout ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    """The first ``length`` bytes of object ``key`` (``size`` bytes long), at upload offset ``start``."""

    key: str
    start: int
    length: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.length

    def truncated(self, length: int) -> _Piece:
        return _Piece(self.key, self.start, length, self.size)


@dataclass(frozen=True, slots=True)
class _UploadListing:
    exists: bool
    chain: list[_Piece]
    garbage: list[str]

    @property
    def stored(self) -> int:
        return self.chain[-1].end if self.chain else 0


def _chain(segments: Sequence[_Piece]) -> tuple[list[_Piece], list[str]]:
    """The segments that continue each other from offset 0, and the keys of all others."""
    by_start = {segment.start: segment for segment in segments}
    chain: list[_Piece] = []
    position = 0
    while (segment := by_start.get(position)) is not None and segment.length > 0:
        chain.append(segment)
        position = segment.end
    on_chain = {segment.key for segment in chain}
    return chain, [segment.key for segment in segments if segment.key not in on_chain]


def _truncate(chain: Sequence[_Piece], size: int) -> list[_Piece]:
    """The pieces holding bytes ``[0, size)``, the last one cut at ``size``."""
    pieces: list[_Piece] = []
    for segment in chain:
        if segment.start >= size:
            break
        pieces.append(segment.truncated(min(segment.length, size - segment.start)))
    return pieces


@dataclass(frozen=True, slots=True)
class _CopyPart:
    """A multipart part copied server-side from bytes ``[offset, offset + length)`` of one segment."""

    piece: _Piece
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class _DataPart:
    """A multipart part assembled in the process from small pieces (each part but the last is ≥ 5 MiB)."""

    pieces: tuple[_Piece, ...]

    @property
    def length(self) -> int:
        return sum(piece.length for piece in self.pieces)


def _plan_parts(pieces: Sequence[_Piece]) -> list[_CopyPart | _DataPart]:
    """Multipart parts for ``pieces``: server-side copies of segments ≥ 5 MiB, the small rest read and re-sent."""
    plan: list[_CopyPart | _DataPart] = []
    pending: list[_Piece] = []
    pending_bytes = 0
    for piece in pieces:
        if not pending and piece.length >= MIN_PART:
            count = math.ceil(piece.length / MAX_PART)
            step = math.ceil(piece.length / count)
            plan.extend(
                _CopyPart(piece, offset, min(step, piece.length - offset)) for offset in range(0, piece.length, step)
            )
            continue
        pending.append(piece)
        pending_bytes += piece.length
        if pending_bytes >= MIN_PART:
            plan.append(_DataPart(tuple(pending)))
            pending, pending_bytes = [], 0
    if pending:
        plan.append(_DataPart(tuple(pending)))
    return plan


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode("ascii")


# -- writer -----------------------------------------------------------------------------------------------------------


class _S3UploadWriter:
    """Appends to one upload from one request: buffers a part, PUTs it as a segment while the next one fills."""

    def __init__(self, store: S3BlobStore, upload_dir: str, offset: int, run: list[_Piece]) -> None:
        self._store = store
        self._dir = upload_dir
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
        if self._buffered >= self._store.part_size_at(self._position):
            await self._flush(merge=True)

    async def _flush(self, *, merge: bool) -> None:
        run = self._run if merge else []
        head = await self._store.read_pieces(run) if run else b""
        start = run[0].start if run else self._position
        body = b"".join([head, *self._buffer]) if head else b"".join(self._buffer)
        obsolete = [piece.key for piece in run if piece.start != start]
        self._position += self._buffered
        self._buffer, self._buffered, self._run = [], 0, []
        key = self._store.segment_key(self._dir, start)
        self._inflight.append(asyncio.create_task(self._store.put_segment(key, body, obsolete)))
        while len(self._inflight) > _WRITES_IN_FLIGHT:
            await self._inflight.pop(0)

    async def close(self) -> None:
        try:
            if self._buffered:
                run_bytes = sum(piece.length for piece in self._run)
                dirty = any(piece.length < piece.size for piece in self._run)
                # Fold the trailing pieces in once they make a valid part, or when one of them must be cut short.
                await self._flush(merge=dirty or run_bytes + self._buffered >= MIN_PART)
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


# -- the store --------------------------------------------------------------------------------------------------------


class S3BlobStore:
    """Blob store in an S3 bucket. See module docstring."""

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
        if not MIN_PART <= part_size <= _MAX_SEGMENT:
            raise ValueError(f"part_size must be between {MIN_PART} and {_MAX_SEGMENT}")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.redirect = redirect
        self.redirect_expires = redirect_expires
        self.part_size = part_size
        if addressing is None:
            addressing = "path" if endpoint else "auto"
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
        self._credentials = (access_key, secret_key, session_token)
        self._client: S3Client | None = None
        self._stack: AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

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

    # -- plumbing -------------------------------------------------------------------------------------------------

    async def _s3(self) -> S3Client:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                access_key, secret_key, token = self._credentials
                stack = AsyncExitStack()
                with _s3_errors("creating the S3 client"):
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

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _blob(self, digest: str) -> str:
        return self._key(blob_key(digest))

    def _upload_dir(self, upload_id: str) -> str:
        return self._key(upload_key(upload_id)) + "/"

    def segment_key(self, upload_dir: str, start: int) -> str:
        return f"{upload_dir}{_SEGMENTS}{start:020d}"

    def part_size_at(self, position: int) -> int:
        """Segment size for bytes at ``position``: grows past 8 GiB so that even a TiB blob fits S3's 10,000 parts."""
        return min(max(self.part_size, position // _GROWTH_DIVISOR), _MAX_SEGMENT)

    async def _list(self, prefix: str) -> AsyncIterator[tuple[str, int]]:
        client = await self._s3()
        with _s3_errors(f"listing {prefix}"):
            async for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj.get("Key", ""), obj.get("Size", 0)

    async def _list_upload(self, upload_dir: str) -> _UploadListing:
        exists = False
        segments: list[_Piece] = []
        garbage: list[str] = []
        async for key, size in self._list(upload_dir):
            name = key[len(upload_dir) :]
            if name == _MARKER:
                exists = True
            elif name.startswith(_SEGMENTS) and name[len(_SEGMENTS) :].isdigit():
                segments.append(_Piece(key, int(name[len(_SEGMENTS) :]), size, size))
            else:
                garbage.append(key)
        chain, off_chain = _chain(segments)
        return _UploadListing(exists, chain, garbage + off_chain)

    async def _delete_keys(self, keys: Sequence[str]) -> None:
        if not keys:
            return
        client = await self._s3()
        for i in range(0, len(keys), _DELETE_BATCH):
            batch = keys[i : i + _DELETE_BATCH]
            with _s3_errors("deleting objects"):
                response = await client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
                )
            errors = [e for e in response.get("Errors", []) if e.get("Code") not in _NOT_FOUND]
            if errors:
                first = errors[0]
                raise StorageError(
                    f"deleting {len(errors)} objects failed: {first.get('Key')}: {first.get('Code')} "
                    f"{first.get('Message', '')}"
                )

    async def _exists(self, key: str) -> int | None:
        client = await self._s3()
        try:
            response = await client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise StorageError(f"HEAD {key} failed: {_describe(exc)}") from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise StorageError(f"HEAD {key} failed: {_describe(exc)}") from exc
        return response["ContentLength"]

    async def _stream(self, key: str, start: int, end: int | None) -> AsyncIterator[bytes]:
        """GET ``[start, end)`` of ``key`` in chunks; resumes (same ETag) if the connection drops mid-body."""
        if end is not None and end <= start:
            return
        client = await self._s3()
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
                code = _error_code(exc)
                if code in _NOT_FOUND:
                    raise UploadMissing(f"{key} is missing") from exc
                if code == "InvalidRange":  # starts at or past the end of the object: nothing to read
                    return
                raise StorageError(f"GET {key} failed: {_describe(exc)}") from exc
            except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise StorageError(f"GET {key} failed: {_describe(exc)}") from exc
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
                    raise StorageError(f"reading {key} failed: {_describe(exc)}") from exc
                log.warning("reading %s broke off at byte %d (%s); resuming", key, position, _describe(exc))
                await asyncio.sleep(0.2 * 2**failures)
            except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
                raise StorageError(f"reading {key} failed: {_describe(exc)}") from exc
            if end is not None and position >= end:
                return

    async def read_pieces(self, pieces: Sequence[_Piece]) -> bytes:
        """The bytes of a few small pieces, in order (bounded: used for < 5 MiB tails and cut segments)."""
        out: list[bytes] = []
        for piece in pieces:
            got = 0
            async for chunk in self._stream(piece.key, 0, piece.length):
                out.append(chunk)
                got += len(chunk)
            if got != piece.length:
                raise StorageError(f"{piece.key} holds {got} bytes, expected {piece.length}")
        return b"".join(out)

    async def put_segment(self, key: str, body: bytes, obsolete: Sequence[str]) -> None:
        """PUT one segment, then drop the pieces it replaces (best effort: the next open collects leftovers)."""
        client = await self._s3()
        md5 = await asyncio.to_thread(_md5, body)
        with _s3_errors(f"writing {key}"):
            await client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentMD5=md5)
        if obsolete:
            try:
                await self._delete_keys(obsolete)
            except StorageError as exc:
                log.warning("could not delete replaced upload pieces: %s", exc)

    # -- BlobStore ------------------------------------------------------------------------------------------------

    async def check(self) -> None:
        probe = self._key(UPLOADS_PREFIX + ".readyz")
        try:
            async with asyncio.timeout(_CHECK_TIMEOUT):
                client = await self._s3()
                with _s3_errors(f"writing to bucket {self.bucket}"):
                    await client.put_object(Bucket=self.bucket, Key=probe, Body=b"ok")
                    await client.delete_object(Bucket=self.bucket, Key=probe)
        except TimeoutError as exc:
            raise StorageError(f"bucket {self.bucket} did not answer within {_CHECK_TIMEOUT:.0f}s") from exc

    async def close(self) -> None:
        async with self._client_lock:
            stack, self._stack, self._client = self._stack, None, None
            if stack is not None:
                await stack.aclose()

    async def stat(self, digest: str) -> int | None:
        return await self._exists(self._blob(digest))

    async def locate(self, digest: str) -> BlobLocation:
        key = self._blob(digest)
        if not self.redirect:
            return BlobLocation()
        client = await self._s3()
        with _s3_errors(f"presigning {key}"):
            url = await client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=self.redirect_expires
            )
        return BlobLocation(redirect_url=url)

    async def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        async for chunk in self._stream(self._blob(digest), start, end):
            yield chunk

    async def delete(self, digest: str) -> None:
        key = self._blob(digest)
        client = await self._s3()
        try:
            await client.delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _error_code(exc) not in _NOT_FOUND:
                raise StorageError(f"deleting {key} failed: {_describe(exc)}") from exc
        except (BotoCoreError, aiohttp.ClientError, OSError) as exc:
            raise StorageError(f"deleting {key} failed: {_describe(exc)}") from exc

    async def create_upload(self, upload_id: str) -> None:
        marker = self._upload_dir(upload_id) + _MARKER
        client = await self._s3()
        with _s3_errors("creating upload"):
            await client.put_object(Bucket=self.bucket, Key=marker, Body=b"")

    async def open_upload(self, upload_id: str, offset: int) -> _S3UploadWriter:
        upload_dir = self._upload_dir(upload_id)
        listing = await self._list_upload(upload_dir)
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        if offset < 0 or offset > listing.stored:
            raise StorageError(f"upload {upload_id} holds {listing.stored} bytes, expected {offset}")
        kept = _truncate(listing.chain, offset)
        # Bytes past ``offset`` belong to a failed request: drop whole segments now (so no new segment can chain
        # into them); a segment cut by ``offset`` stays until the writer rewrites it, so an abort loses nothing.
        await self._delete_keys(listing.garbage + [s.key for s in listing.chain if s.start >= offset])
        run: list[_Piece] = []
        if kept and kept[-1].length < kept[-1].size:
            run.append(kept.pop())
        while kept and kept[-1].size < MIN_PART:
            run.insert(0, kept.pop())
        return _S3UploadWriter(self, upload_dir, offset, run)

    async def read_upload(self, upload_id: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        listing = await self._list_upload(self._upload_dir(upload_id))
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        for segment in listing.chain:
            low = max(start, segment.start)
            high = segment.end if end is None else min(end, segment.end)
            if low >= high:
                continue
            async for chunk in self._stream(segment.key, low - segment.start, high - segment.start):
                yield chunk

    async def commit_upload(self, upload_id: str, digest: str, size: int) -> None:
        target = self._blob(digest)
        upload_dir = self._upload_dir(upload_id)
        if await self._exists(target) is not None:
            await self._drop_upload(upload_dir)
            return
        listing = await self._list_upload(upload_dir)
        if not listing.exists:
            raise UploadMissing(f"upload {upload_id} is missing")
        if listing.stored < size:
            raise StorageError(f"upload {upload_id} holds {listing.stored} bytes, cannot commit {size}")
        await self._assemble(target, _truncate(listing.chain, size))
        await self._drop_upload(upload_dir)

    async def _assemble(self, target: str, pieces: Sequence[_Piece]) -> None:
        """Write ``pieces`` (in order) as object ``target``, in one atomic step for readers."""
        client = await self._s3()
        plan = _plan_parts(pieces)
        if not plan or (len(plan) == 1 and isinstance(plan[0], _DataPart)):
            body = await self.read_pieces(pieces)
            md5 = await asyncio.to_thread(_md5, body)
            with _s3_errors(f"writing {target}"):
                await client.put_object(
                    Bucket=self.bucket, Key=target, Body=body, ContentMD5=md5, ContentType="application/octet-stream"
                )
            return
        only = plan[0]
        if len(plan) == 1 and isinstance(only, _CopyPart) and only.length == only.piece.size:
            with _s3_errors(f"copying {only.piece.key} to {target}"):
                await client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource={"Bucket": self.bucket, "Key": only.piece.key},
                    MetadataDirective="REPLACE",
                    ContentType="application/octet-stream",
                )
            return
        if len(plan) > MAX_PARTS:
            raise StorageError(f"{target} would need {len(plan)} parts, more than S3's {MAX_PARTS}")
        with _s3_errors(f"starting multipart upload of {target}"):
            created = await client.create_multipart_upload(
                Bucket=self.bucket, Key=target, ContentType="application/octet-stream"
            )
        multipart_id = created["UploadId"]
        limit = asyncio.Semaphore(_COMMIT_CONCURRENCY)

        async def send(number: int, part: _CopyPart | _DataPart) -> CompletedPartTypeDef:
            async with limit:
                if isinstance(part, _CopyPart):
                    last = part.offset + part.length - 1
                    with _s3_errors(f"copying part {number} of {target}"):
                        copied = await client.upload_part_copy(
                            Bucket=self.bucket,
                            Key=target,
                            UploadId=multipart_id,
                            PartNumber=number,
                            CopySource={"Bucket": self.bucket, "Key": part.piece.key},
                            CopySourceRange=f"bytes={part.offset}-{last}",
                        )
                    return {"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]}
                body = await self.read_pieces(part.pieces)
                md5 = await asyncio.to_thread(_md5, body)
                with _s3_errors(f"uploading part {number} of {target}"):
                    uploaded = await client.upload_part(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=multipart_id,
                        PartNumber=number,
                        Body=body,
                        ContentMD5=md5,
                    )
                return {"PartNumber": number, "ETag": uploaded["ETag"]}

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(send(n, part)) for n, part in enumerate(plan, start=1)]
            with _s3_errors(f"completing {target}"):
                await client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=target,
                    UploadId=multipart_id,
                    MultipartUpload={"Parts": [task.result() for task in tasks]},
                )
        except BaseException as exc:
            with contextlib.suppress(Exception):
                await asyncio.shield(
                    client.abort_multipart_upload(Bucket=self.bucket, Key=target, UploadId=multipart_id)
                )
            if isinstance(exc, BaseExceptionGroup):
                errors = exc.subgroup(StorageError)
                if errors is not None:
                    raise errors.exceptions[0] from exc
            raise

    async def _drop_upload(self, upload_dir: str) -> None:
        """Delete an upload after its commit; failures only leave garbage that expiry collects later."""
        try:
            await self._delete_upload_dir(upload_dir)
        except StorageError as exc:
            log.warning("committed, but could not delete upload objects under %s: %s", upload_dir, exc)

    async def _delete_upload_dir(self, upload_dir: str) -> None:
        # The marker goes first: from then on the upload is missing even if deleting its segments fails half-way.
        await self._delete_keys([upload_dir + _MARKER])
        await self._delete_keys([key async for key, _ in self._list(upload_dir)])

    async def delete_upload(self, upload_id: str) -> None:
        await self._delete_upload_dir(self._upload_dir(upload_id))

    async def list_uploads(self) -> list[str]:
        client = await self._s3()
        root = self._key(UPLOADS_PREFIX)
        ids: list[str] = []
        with _s3_errors("listing uploads"):
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=root, Delimiter="/"):
                for common in page.get("CommonPrefixes", []):
                    upload_id = common.get("Prefix", "")[len(root) :].rstrip("/")
                    if _UPLOAD_ID_RE.match(upload_id):
                        ids.append(upload_id)
        return ids
