"""The build sandbox's registry gate (``dockyard.builds.registry_gate``) between a raw HTTP/1.1 client on loopback
and a fake registry (a small ASGI app served by uvicorn on loopback): a chunked request body decoded — chunk
extensions, sizes in either case, trailers — and forwarded whole with the build's bearer token in place of the
client's credentials; a sized body; ``Location`` rewritten to the gate only when it names the registry; the
registry's error answers relayed as they are; and the gate's own refusals: a stranger's request, a TLS handshake,
a malformed request or body."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn

from dockyard.builds.registry_gate import RegistryGate

pytestmark = pytest.mark.embedded_only

TOKEN = "build-token-0123456789abcdef"


@dataclass(frozen=True)
class Seen:
    method: str
    target: str
    headers: dict[str, str]  # names lower-case
    body: bytes
    complete: bool  # False: the client went away before the body's end


@dataclass(frozen=True)
class Answer:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


class FakeRegistry:
    """Records every request it is sent and answers with ``reply(request)``."""

    def __init__(self, reply: Callable[[Seen], Answer]) -> None:
        self.reply = reply
        self.seen: list[Seen] = []
        self.url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, complete = b"", False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            body += message.get("body", b"")
            if not message.get("more_body"):
                complete = True
                break
        query = scope["query_string"].decode()
        seen = Seen(
            scope["method"],
            scope["path"] + (f"?{query}" if query else ""),
            {k.decode().lower(): v.decode() for k, v in scope["headers"]},
            body,
            complete,
        )
        self.seen.append(seen)
        if not complete:
            return
        answer = self.reply(seen)
        headers = [(k.encode(), v.encode()) for k, v in answer.headers]
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.body})


@contextlib.asynccontextmanager
async def fake_registry(reply: Callable[[Seen], Answer]) -> AsyncIterator[FakeRegistry]:
    registry = FakeRegistry(reply)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    registry.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(registry, lifespan="off", log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            assert not task.done(), "the fake registry did not start"
            await asyncio.sleep(0.01)
        yield registry
    finally:
        server.should_exit = True
        await task
        sock.close()


@dataclass(frozen=True)
class Response:
    status_line: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)


async def exchange(gate: RegistryGate, request: bytes, *, end: bool = False) -> bytes:
    """Send ``request`` as is (``end``: then close the sending half) and read until the gate closes."""
    host, port = gate.host.split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        if end:
            writer.write_eof()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def parse(raw: bytes) -> Response:
    head, separator, body = raw.partition(b"\r\n\r\n")
    assert separator, raw
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name.strip(), value.strip()) for name, _, value in (line.partition(":") for line in lines)]
    return Response(status_line, headers, body)


def request_head(gate: RegistryGate, method: str, target: str, *headers: str, auth: bool = True) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {gate.host}"]
    if auth:
        lines.append(f"Authorization: Basic {gate.auth}")
    return ("\r\n".join([*lines, *headers]) + "\r\n\r\n").encode("latin-1")


def chunked(*pieces: bytes, extension: str = "", upper: bool = False, trailers: tuple[str, ...] = ()) -> bytes:
    out = b""
    for piece in pieces:
        size = f"{len(piece):X}" if upper else f"{len(piece):x}"
        out += f"{size}{extension}\r\n".encode() + piece + b"\r\n"
    return out + b"0\r\n" + b"".join(f"{t}\r\n".encode() for t in trailers) + b"\r\n"


def accepted(seen: Seen) -> Answer:
    return Answer(202, [("Location", "/v2/acme/app/blobs/uploads/u1?_state=abc"), ("Docker-Upload-UUID", "u1")])


# -- chunked and sized bodies ---------------------------------------------------------------------------------


async def test_a_chunked_body_is_decoded_and_forwarded_whole_with_the_build_token() -> None:
    big = bytes(range(256)) * 4500  # 1.1 MiB: more than one read of the gate
    pieces = [b"hello", b" chunked ", big, b"!"]
    async with fake_registry(accepted) as registry, RegistryGate(registry.url, TOKEN) as gate:
        head = request_head(
            gate,
            "PATCH",
            "/v2/acme/app/blobs/uploads/u1?_state=xyz",
            "Transfer-Encoding: chunked",
            "Content-Type: application/octet-stream",
            "Keep-Alive: timeout=5",
            "TE: trailers",
            "Proxy-Authorization: Basic c3RyYW5nZXI6eA==",
            "Docker-Distribution-Api-Version: registry/2.0",
        )
        body = chunked(*pieces, extension=";name=value", upper=True, trailers=("X-Checksum: none",))
        answer = parse(await exchange(gate, head + body))

    (seen,) = registry.seen
    assert (seen.method, seen.target) == ("PATCH", "/v2/acme/app/blobs/uploads/u1?_state=xyz")
    assert seen.body == b"".join(pieces)
    assert seen.headers["authorization"] == f"Bearer {TOKEN}"  # the client's Basic credentials stay at the gate
    assert seen.headers["content-type"] == "application/octet-stream"
    assert seen.headers["docker-distribution-api-version"] == "registry/2.0"
    assert seen.headers["host"] == registry.url.removeprefix("http://")
    assert {"proxy-authorization", "keep-alive", "te", "content-length"}.isdisjoint(seen.headers)
    assert seen.complete
    assert answer.status_line == "HTTP/1.1 202 Accepted"
    assert answer.header("Docker-Upload-UUID") == "u1"
    assert answer.header("Connection") == "close"


async def test_a_chunked_body_of_one_chunk_without_trailers() -> None:
    async with fake_registry(accepted) as registry, RegistryGate(registry.url, TOKEN) as gate:
        head = request_head(gate, "POST", "/v2/acme/app/blobs/uploads/", "Transfer-Encoding: Chunked")
        await exchange(gate, head + chunked(b"x" * 17))
        await exchange(gate, head + chunked())  # an empty chunked body
    assert [s.body for s in registry.seen] == [b"x" * 17, b""]


async def test_a_sized_body_is_forwarded_with_its_length() -> None:
    config = b'{"architecture":"amd64","os":"linux"}'

    def created(seen: Seen) -> Answer:
        return Answer(201, [("Docker-Content-Digest", "sha256:" + "0" * 64)])

    async with fake_registry(created) as registry, RegistryGate(registry.url, TOKEN) as gate:
        head = request_head(
            gate, "PUT", "/v2/acme/app/blobs/uploads/u1?digest=sha256%3A00", f"Content-Length: {len(config)}"
        )
        answer = parse(await exchange(gate, head + config))
    (seen,) = registry.seen
    assert (seen.method, seen.body, seen.headers["content-length"]) == ("PUT", config, str(len(config)))
    assert answer.status_line == "HTTP/1.1 201 Created"
    assert answer.header("Docker-Content-Digest") == "sha256:" + "0" * 64


# -- what comes back --------------------------------------------------------------------------------------------


async def test_locations_naming_the_registry_point_at_the_gate_and_others_pass_untouched() -> None:
    elsewhere = "https://objects.example/bucket/blob?X-Amz-Signature=abc"

    def reply(seen: Seen) -> Answer:
        if seen.target.startswith("/v2/acme/app/blobs/sha256"):
            return Answer(307, [("Location", elsewhere)])
        return Answer(202, [("Location", f"{registry.url}/v2/acme/app/blobs/uploads/u2?_state=s")])

    async with fake_registry(reply) as registry, RegistryGate(registry.url + "/", TOKEN) as gate:
        started = parse(await exchange(gate, request_head(gate, "POST", "/v2/acme/app/blobs/uploads/")))
        redirected = parse(await exchange(gate, request_head(gate, "GET", "/v2/acme/app/blobs/sha256:" + "1" * 64)))
    assert started.header("Location") == f"http://{gate.host}/v2/acme/app/blobs/uploads/u2?_state=s"
    assert (redirected.status_line, redirected.header("Location")) == ("HTTP/1.1 307 Temporary Redirect", elsewhere)


async def test_the_registrys_error_answers_are_relayed_as_they_are() -> None:
    error = b'{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}'

    def denied(seen: Seen) -> Answer:
        headers = [
            ("Content-Type", "application/json"),
            ("WWW-Authenticate", 'Bearer realm="x",error="insufficient_scope"'),
        ]
        return Answer(403, headers, error)

    async with fake_registry(denied) as registry, RegistryGate(registry.url, TOKEN) as gate:
        answer = parse(await exchange(gate, request_head(gate, "GET", "/v2/acme/secret/manifests/latest")))
        head_only = parse(await exchange(gate, request_head(gate, "HEAD", "/v2/acme/secret/manifests/latest")))
    assert answer.status_line == "HTTP/1.1 403 Forbidden"
    assert answer.body == error
    assert answer.header("Content-Type") == "application/json"
    assert answer.header("WWW-Authenticate") == 'Bearer realm="x",error="insufficient_scope"'
    assert head_only.status_line == "HTTP/1.1 403 Forbidden"
    assert head_only.body == b""  # a HEAD answer has no body
    assert [s.method for s in registry.seen] == ["GET", "HEAD"]


# -- the gate's own refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic Z2F0ZTp3cm9uZw==", f"Bearer {TOKEN}"],
)
async def test_a_client_without_the_gates_credentials_is_refused_and_nothing_is_forwarded(
    authorization: str | None,
) -> None:
    async with fake_registry(accepted) as registry, RegistryGate(registry.url, TOKEN) as gate:
        extra = () if authorization is None else (f"Authorization: {authorization}",)
        raw = await exchange(gate, request_head(gate, "GET", "/v2/", *extra, auth=False))
    answer = parse(raw)
    assert answer.status_line == "HTTP/1.1 401 Unauthorized"
    assert answer.header("WWW-Authenticate") == 'Basic realm="dockyard-build-gate"'
    assert answer.body == b""
    assert registry.seen == []


async def test_a_registry_that_cannot_be_reached_is_a_502() -> None:
    with socket.socket() as unused:  # a port nothing listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    async with RegistryGate(f"http://127.0.0.1:{port}", TOKEN) as gate:
        answer = parse(await exchange(gate, request_head(gate, "GET", "/v2/")))
        assert answer.status_line == "HTTP/1.1 502 Bad Gateway"
        assert answer.body == b""
        # …and the gate goes on serving
        again = parse(await exchange(gate, request_head(gate, "GET", "/v2/", auth=False)))
        assert again.status_line == "HTTP/1.1 401 Unauthorized"


async def test_the_gates_credentials_are_random_basic_ones() -> None:
    first, second = RegistryGate("http://127.0.0.1:1", TOKEN), RegistryGate("http://127.0.0.1:1", TOKEN)
    async with first, second:
        assert first.auth != second.auth
        user, _, secret = base64.b64decode(first.auth).decode().partition(":")
        assert (user, len(secret) >= 32) == ("gate", True)
        assert TOKEN not in base64.b64decode(first.auth).decode()


@pytest.mark.parametrize(
    "raw",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS ClientHello
        b"GARBAGE\r\n\r\n",  # no method, target and version
        b"GET /v2/ HTTP/1.1\r\nHost: x\r\n",  # the head never ends
        b"GET /v2/ HTTP/1.1\r\n" + b"X-Padding: " + b"a" * 70_000 + b"\r\n\r\n",  # a head over 64 KiB
    ],
)
async def test_what_is_not_a_plain_http_request_is_hung_up_on(raw: bytes) -> None:
    async with fake_registry(accepted) as registry, RegistryGate(registry.url, TOKEN) as gate:
        assert await exchange(gate, raw, end=True) == b""
    assert registry.seen == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (("Transfer-Encoding: chunked",), b"zz\r\nhello\r\n0\r\n\r\n"),  # a chunk size that is not hex
        (("Transfer-Encoding: chunked",), b"10\r\nonly-part"),  # the chunk ends early
        (("Transfer-Encoding: chunked",), b"5\r\nhello\r\n"),  # no last chunk
        (("Content-Length: 100",), b"x" * 10),  # fewer bytes than announced
    ],
)
async def test_a_malformed_or_truncated_body_is_never_forwarded_as_complete(
    headers: tuple[str, ...], body: bytes
) -> None:
    async with fake_registry(accepted) as registry, RegistryGate(registry.url, TOKEN) as gate:
        head = request_head(gate, "PATCH", "/v2/acme/app/blobs/uploads/u1", *headers)
        raw = await exchange(gate, head + body, end=True)
    assert raw == b""  # no answer: the connection is closed
    # The registry saw the request start and its connection drop before the body's end: nothing to store.
    assert [(s.method, s.complete) for s in registry.seen] in ([], [("PATCH", False)])
