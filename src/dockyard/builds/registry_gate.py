"""A loopback reverse proxy that lets buildah talk to Dockyard with the build's bearer token.

containers/image (buildah's registry client) takes a user name and password, or an identity (refresh) token, but
not a ready bearer token (skopeo's ``--registry-token`` would put it in the process's argv, readable by every
local user). So the executor opens this gate on ``127.0.0.1:<random port>`` while it pulls bases and pushes the
result, points buildah at it (``--tls-verify=false``: plain HTTP on loopback), and the gate forwards each request
to the registry with ``Authorization: Bearer <token>``. The token lives only in this process's memory: never in
argv, a file, the environment of a child or the log. ``Location`` headers naming the registry are rewritten to
the gate; redirects elsewhere (presigned object-store URLs) pass through untouched.

The gate is closed while ``RUN`` steps execute, so a build allowed network access cannot borrow the token. While
it is open, it serves only clients that present its own random Basic credentials (:attr:`RegistryGate.auth`,
which the executor writes into the build's private ``auth.json``): another local process — a ``RUN`` step of a
concurrent build allowed network access, another user — gets ``401`` and nothing is forwarded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator
from types import TracebackType

import httpx

log = logging.getLogger("dockyard.builds")

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "content-length",
}
_MAX_HEADER_BYTES = 64 * 1024


class RegistryGate:
    """``async with RegistryGate(base_url, token, verify) as gate:`` — ``gate.host`` is ``127.0.0.1:<port>``."""

    def __init__(self, base_url: str, token: str, tls_verify: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._client = httpx.AsyncClient(verify=tls_verify, timeout=httpx.Timeout(300.0, connect=30.0))
        for name in ("accept", "accept-encoding", "user-agent"):
            self._client.headers.pop(name, None)
        self._server: asyncio.Server | None = None
        self.host = ""
        # What buildah must send (``auth`` in auth.json): Basic gate:<random>.
        self.auth = base64.b64encode(f"gate:{secrets.token_urlsafe(32)}".encode()).decode()

    async def __aenter__(self) -> RegistryGate:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, limit=_MAX_HEADER_BYTES)
        port = self._server.sockets[0].getsockname()[1]
        self.host = f"127.0.0.1:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)
        await self._client.aclose()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await reader.readexactly(1)
            # containers/image tries HTTPS first even with --tls-verify=false: refuse a TLS ClientHello at once
            # instead of letting it wait out Go's 10 s handshake timeout, and it falls back to plain HTTP.
            if first != b"\x16":
                await self._one(reader, writer, first)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, first: bytes) -> None:
        """Forward one request (one per connection: the response ends by closing it)."""
        head = first + await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _version = lines[0].split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        lowered = {name.lower(): value for name, value in headers}
        if not hmac.compare_digest(lowered.get("authorization", "").encode(), f"Basic {self.auth}".encode()):
            writer.write(
                b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="dockyard-build-gate"\r\n'
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
            return
        chunked = "chunked" in lowered.get("transfer-encoding", "").lower()
        length = int(lowered.get("content-length", "0") or 0)
        forward = [(n, v) for n, v in headers if n.lower() not in _HOP_BY_HOP]
        forward.append(("Authorization", f"Bearer {self._token}"))
        content: AsyncIterator[bytes] | bytes
        if chunked:
            content = _chunks(reader)
        elif length:
            forward.append(("Content-Length", str(length)))
            content = _exactly(reader, length)
        else:
            content = b""
        request = self._client.build_request(method, self.base_url + target, headers=forward, content=content)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TransportError as exc:  # the registry is unreachable, or stopped answering
            log.warning("build registry gate: %s %s: %s", method, target.split("?", 1)[0], exc)
            writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            return
        try:
            status_line = f"HTTP/1.1 {response.status_code} {response.reason_phrase}\r\n"
            out = [status_line]
            for name, value in response.headers.multi_items():
                if name.lower() in ("connection", "keep-alive", "transfer-encoding"):
                    continue
                if name.lower() == "location" and value.startswith(self.base_url):
                    value = f"http://{self.host}{value[len(self.base_url) :]}"
                out.append(f"{name}: {value}\r\n")
            # The body is delimited by closing the connection, whatever the registry sent: one request per
            # connection keeps the gate simple, and the client reconnects to loopback for nothing.
            out.append("Connection: close\r\n\r\n")
            writer.write("".join(out).encode("latin-1"))
            if method != "HEAD":
                async for piece in response.aiter_raw():
                    writer.write(piece)
                    await writer.drain()
            await writer.drain()
        finally:
            await response.aclose()


async def _exactly(reader: asyncio.StreamReader, length: int) -> AsyncIterator[bytes]:
    left = length
    while left > 0:
        piece = await reader.read(min(left, 1024 * 1024))
        if not piece:
            raise ConnectionError("request body ended early")
        left -= len(piece)
        yield piece


async def _chunks(reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
    """Decode a chunked request body."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return
        left = size
        while left > 0:
            piece = await reader.read(min(left, 1024 * 1024))
            if not piece:
                raise ConnectionError("request body ended early")
            left -= len(piece)
            yield piece
        await reader.readexactly(2)
