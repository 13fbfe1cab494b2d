"""Minimal HTTP/1.1 clients for the benchmark, so that the client is never what is being measured.

- ``SyncConnection``: one blocking keep-alive socket for the big transfers. Request bodies taken from a file go
  out with ``socket.sendfile`` (zero copy, like curl ``-T`` but cheaper); response bodies can be streamed into
  caller-owned buffers with ``recv_into``.
- ``AsyncConnection``: one asyncio keep-alive connection for the many small requests (run it on uvloop);
  a few microseconds of client CPU per request instead of the hundreds a full-featured client spends.

Both speak only what the two registries send: ``Content-Length`` or chunked bodies, no compression, no TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

_HEAD_LIMIT = 256 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class HTTPError(Exception):
    """The server answered something the benchmark did not expect (or broke the connection)."""


@dataclass(frozen=True, slots=True)
class FileSlice:
    """A request body read from ``path`` at ``offset``, ``count`` bytes long."""

    path: str
    offset: int
    count: int


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)


def path_of(location: str) -> str:
    """A ``Location`` header as a request target: distribution sends absolute URLs, Dockyard paths."""
    if location.startswith(("http://", "https://")):
        parts = urlsplit(location)
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return location


def with_query(target: str, query: str) -> str:
    return f"{target}{'&' if '?' in target else '?'}{query}"


def _request_head(method: str, target: str, host: str, headers: Mapping[str, str], length: int | None) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HTTPError(f"bad status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return int(parts[1]), headers


def _has_body(method: str, status: int) -> bool:
    return method != "HEAD" and status >= 200 and status not in _NO_BODY_STATUSES


def _keeps_alive(headers: Mapping[str, str]) -> bool:
    return "close" not in headers.get("connection", "").lower()


# -- blocking --------------------------------------------------------------------------------------------------


class SyncConnection:
    """One blocking keep-alive connection; reconnects when the server has closed it."""

    def __init__(self, host: str, port: int, timeout: float = 600.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._buf.clear()

    def __enter__(self) -> SyncConnection:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._buf.clear()
        return self._sock

    def _fill(self) -> bool:
        assert self._sock is not None
        data = self._sock.recv(256 * 1024)
        if not data:
            return False
        self._buf += data
        return True

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end >= 0:
                raw = bytes(self._buf[:end])
                del self._buf[: end + 4]
                return _parse_head(raw)
            if len(self._buf) > _HEAD_LIMIT:
                raise HTTPError("response head too large")
            if not self._fill():
                raise HTTPError("connection closed before the response head")

    def _read_exact(self, n: int) -> bytes:
        while len(self._buf) < n:
            if not self._fill():
                raise HTTPError("connection closed in the middle of a body")
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def _read_line(self) -> bytes:
        while True:
            end = self._buf.find(b"\r\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 2]
                return line
            if not self._fill():
                raise HTTPError("connection closed in the middle of a chunked body")

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._read_line().split(b";")[0], 16)
            if size == 0:
                while self._read_line():
                    pass
                return b"".join(parts)
            parts.append(self._read_exact(size))
            self._read_line()

    def _readinto(self, view: memoryview) -> int:
        """Fill ``view`` from buffered bytes first, then straight from the socket."""
        if self._buf:
            n = min(len(view), len(self._buf))
            view[:n] = self._buf[:n]
            del self._buf[:n]
            return n
        assert self._sock is not None
        return self._sock.recv_into(view)

    def _send(self, method: str, target: str, headers: Mapping[str, str], body: bytes | FileSlice | None) -> None:
        sock = self._socket()
        if isinstance(body, FileSlice):
            sock.sendall(_request_head(method, target, f"{self.host}:{self.port}", headers, body.count))
            with open(body.path, "rb") as fh:
                sent = sock.sendfile(fh, body.offset, body.count)
            if sent != body.count:
                raise HTTPError(f"sent {sent} of {body.count} body bytes")
            return
        length = len(body) if body is not None else (0 if method in _BODY_METHODS else None)
        sock.sendall(_request_head(method, target, f"{self.host}:{self.port}", headers, length) + (body or b""))

    def request(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | FileSlice | None = None,
    ) -> Response:
        self._send(method, target, headers or {}, body)
        status, resp_headers = self._read_head()
        content = b""
        if _has_body(method, status):
            if "chunked" in resp_headers.get("transfer-encoding", "").lower():
                content = self._read_chunked()
            elif "content-length" in resp_headers:
                content = self._read_exact(int(resp_headers["content-length"]))
            else:
                while self._fill():
                    pass
                content, self._buf = bytes(self._buf), bytearray()
                self.close()
        if not _keeps_alive(resp_headers):
            self.close()
        return Response(status, resp_headers, content)

    def download(
        self,
        target: str,
        headers: Mapping[str, str],
        take_buffer: Callable[[], bytearray],
        deliver: Callable[[bytearray, int], None],
    ) -> tuple[int, dict[str, str], int]:
        """GET with a ``Content-Length`` body streamed into buffers from ``take_buffer``; each filled buffer
        goes to ``deliver(buffer, n)``, which owns it from then on. Returns (status, headers, body bytes)."""
        self._send("GET", target, headers, None)
        status, resp_headers = self._read_head()
        if "content-length" not in resp_headers:
            raise HTTPError(f"download of {target} has no Content-Length (status {status})")
        remaining = int(resp_headers["content-length"])
        total = 0
        while remaining > 0:
            buf = take_buffer()
            view = memoryview(buf)
            filled = 0
            limit = min(len(buf), remaining)
            while filled < limit:
                n = self._readinto(view[filled:limit])
                if n == 0:
                    raise HTTPError("connection closed in the middle of a download")
                filled += n
            remaining -= filled
            total += filled
            deliver(buf, filled)
        if not _keeps_alive(resp_headers):
            self.close()
        return status, resp_headers, total


# -- asyncio ---------------------------------------------------------------------------------------------------


class AsyncConnection:
    """One asyncio keep-alive connection, used by one task at a time."""

    def __init__(self, host: str, port: int, timeout: float = 120.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._reader is None or self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=_HEAD_LIMIT)
            sock = self._writer.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self._reader, self._writer

    async def request(
        self, method: str, target: str, headers: Mapping[str, str] | None = None, body: bytes | None = None
    ) -> Response:
        reused = self._writer is not None
        try:
            return await asyncio.wait_for(self._exchange(method, target, headers or {}, body), self.timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            await self.close()
            # A reused connection the server closed while idle: send once more on a fresh one.
            if reused and not (isinstance(exc, asyncio.IncompleteReadError) and exc.partial):
                return await asyncio.wait_for(self._exchange(method, target, headers or {}, body), self.timeout)
            raise HTTPError(f"{method} {target}: {exc!r}") from exc

    async def _exchange(self, method: str, target: str, headers: Mapping[str, str], body: bytes | None) -> Response:
        reader, writer = await self._connect()
        length = len(body) if body is not None else (0 if method in _BODY_METHODS else None)
        writer.write(_request_head(method, target, f"{self.host}:{self.port}", headers, length) + (body or b""))
        raw = await reader.readuntil(b"\r\n\r\n")
        status, resp_headers = _parse_head(raw[:-4])
        content = b""
        if _has_body(method, status):
            if "chunked" in resp_headers.get("transfer-encoding", "").lower():
                parts: list[bytes] = []
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                    if size == 0:
                        while (await reader.readuntil(b"\r\n")) != b"\r\n":
                            pass
                        break
                    parts.append(await reader.readexactly(size))
                    await reader.readexactly(2)
                content = b"".join(parts)
            elif "content-length" in resp_headers:
                content = await reader.readexactly(int(resp_headers["content-length"]))
            else:
                content = await reader.read()
                await self.close()
        if not _keeps_alive(resp_headers):
            await self.close()
        return Response(status, resp_headers, content)


def expect(response: Response, *statuses: int, what: str) -> Response:
    if response.status not in statuses:
        raise HTTPError(f"{what}: HTTP {response.status}, expected {statuses}: {response.body[:300]!r}")
    return response
