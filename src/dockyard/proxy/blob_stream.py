"""The body of an upstream's blob, read by the standard library's ``http.client`` in worker threads.

The pull-through cache's miss path reads the whole blob from the upstream while it streams it to its clients and
stores it. Through httpx every 64 KiB read is parsed by h11 on the event loop (about 1.2 CPU-seconds per GiB
before any hashing, writing or sending, and it holds the GIL that the hashing and writing threads need).
``http.client`` reads a response body of known length straight from the socket into the chunk it returns (one
copy, no parsing per read), and the read runs in a worker thread while the event loop hands the previous chunk to
the clients and the store: one MiB per thread hop.

What httpx did for this request is done here: redirects are followed (to a CDN or a presigned storage URL: the
``Authorization`` header goes only to the origin it was meant for), TLS is verified with httpx's CA bundle and
settings, the time-out applies to every socket operation. Authentication stays with ``UpstreamClient``, which
retries with a token when the first answer is a ``401``.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import ssl
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

CHUNK_BYTES = 1024 * 1024
MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


def declared_size(content_length: str | None) -> int | None:
    """A response's ``Content-Length`` as a size, or None when it has none that is a plain number."""
    return int(content_length) if content_length is not None and content_length.isdigit() else None


class StreamFailed(Exception):
    """No answer came from the upstream (connection, TLS, time-out, a malformed response, too many redirects)."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _connect(url: str, timeout: float, context: ssl.SSLContext) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StreamFailed(f"cannot fetch {parts.scheme or 'a schemeless'} URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        return http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context), target
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout), target


class BlobResponse:
    """One GET's answer: status and headers at hand, the body read in chunks off the event loop."""

    def __init__(
        self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse, readers: Executor
    ) -> None:
        self._connection = connection
        self._response = response
        self._readers = readers
        self.status = response.status

    def header(self, name: str) -> str | None:
        return self._response.getheader(name)

    @property
    def size(self) -> int | None:
        return declared_size(self.header("content-length"))

    def _read(self) -> bytes:
        try:
            return self._response.read(CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            raise StreamFailed(f"reading the blob failed: {exc}") from exc

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, in chunks of up to ``CHUNK_BYTES``; the next one is read while the caller handles this one.
        Ends early (``StreamFailed``) if the upstream closes before the declared length."""
        loop = asyncio.get_running_loop()
        pending: asyncio.Future[bytes] = loop.run_in_executor(self._readers, self._read)
        try:
            while True:
                chunk = await pending
                if not chunk:
                    if self._response.length:  # http.client counts down the declared length
                        raise StreamFailed("the upstream closed the connection before the end of the blob")
                    return
                pending = loop.run_in_executor(self._readers, self._read)
                yield chunk
        finally:
            if not pending.done():
                self._abort()  # wakes the reading thread: the socket is shut down under it
                with contextlib.suppress(BaseException):
                    await pending

    def _abort(self) -> None:
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(2)

    def close(self) -> None:
        """Close the response and its connection (a blocking call is never made here: safe on the loop)."""
        self._abort()
        self._response.close()
        self._connection.close()


def get(url: str, headers: dict[str, str], timeout: float, context: ssl.SSLContext, readers: Executor) -> BlobResponse:
    """Send a GET (blocking: call it in a worker thread) and follow redirects; the answer's body is not read yet,
    and will be read in threads of ``readers`` (a pool of their own: a read waits on the upstream's pace, and must
    not hold up the threads that write and hash uploads). Raises ``StreamFailed`` when no answer came."""
    sent = dict(headers)
    for _ in range(MAX_REDIRECTS + 1):
        connection, target = _connect(url, timeout, context)
        try:
            connection.request("GET", target, headers=sent)
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise StreamFailed(f"{_origin(url)[1]} unreachable: {exc}") from exc
        location = response.getheader("location")
        if response.status not in _REDIRECTS or not location:
            return BlobResponse(connection, response, readers)
        response.close()
        connection.close()
        following = urljoin(url, location)
        if _origin(following) != _origin(url):
            sent = {k: v for k, v in sent.items() if k.lower() != "authorization"}
        url = following
    raise StreamFailed(f"more than {MAX_REDIRECTS} redirects")


@dataclass(frozen=True, slots=True)
class BlobStream:
    """A blob streaming from the upstream: its declared size (None: not declared) and its bytes."""

    size: int | None
    chunks: AsyncIterator[bytes]
