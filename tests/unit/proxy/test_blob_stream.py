"""The cache's miss path reads blob bodies with ``http.client`` in worker threads (``proxy.blob_stream``): against
two real HTTP servers on loopback, the token flow, redirects (the ``Authorization`` header kept for the origin it
was meant for and dropped for another one, as httpx does), failures told apart (missing, down, cut short), and
the bytes intact across chunk boundaries."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dockyard.proxy import blob_stream
from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown, UpstreamMissing

BODY = os.urandom(3 * blob_stream.CHUNK_BYTES + 12345)  # not a multiple of the chunk size
DIGEST = f"sha256:{hashlib.sha256(BODY).hexdigest()}"


@dataclass
class Seen:
    requests: list[tuple[str, str | None]] = field(default_factory=list)


Route = Callable[[BaseHTTPRequestHandler], None]


@dataclass
class Site:
    url: str
    seen: Seen
    routes: dict[str, Route]


@pytest.fixture
def sites() -> Iterator[Callable[[], Site]]:
    servers: list[ThreadingHTTPServer] = []

    def make() -> Site:
        seen = Seen()
        routes: dict[str, Route] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                seen.requests.append((self.path, self.headers.get("Authorization")))
                route = routes.get(self.path.partition("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Site(f"http://127.0.0.1:{server.server_address[1]}", seen, routes)

    yield make
    for server in servers:
        server.shutdown()
        server.server_close()


def send_blob(handler: BaseHTTPRequestHandler, body: bytes = BODY, declared: int | None = None) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(body) if declared is None else declared))
    handler.end_headers()
    handler.wfile.write(body)


def redirect(to: str) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(307)
        handler.send_header("Location", to)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return route


async def read(client: UpstreamClient, upstream: Upstream, repository: str = "team/app") -> tuple[int | None, bytes]:
    async with client.blob_stream(upstream, repository, DIGEST) as stream:
        return stream.size, b"".join([chunk async for chunk in stream.chunks])


async def test_bearer_challenge_then_the_blob_in_chunks(sites: Callable[[], Site]) -> None:
    site = sites()
    path = f"/v2/team/app/blobs/{DIGEST}"

    def guarded(handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Authorization") != "Bearer T1":
            handler.send_response(401)
            challenge = f'Bearer realm="{site.url}/token",service="test",scope="repository:team/app:pull"'
            handler.send_header("WWW-Authenticate", challenge)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        send_blob(handler)

    def token(handler: BaseHTTPRequestHandler) -> None:
        body = b'{"token": "T1", "expires_in": 300}'
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    site.routes[path] = guarded
    site.routes["/token"] = token
    client = UpstreamClient(5.0)
    upstream = Upstream("cache", site.url, "bob", "secret", 60)
    assert await read(client, upstream) == (len(BODY), BODY)
    assert [p.partition("?")[0] for p, _ in site.seen.requests] == [path, "/token", path]
    # The token is cached: the next blob goes out with it at once.
    assert await read(client, upstream) == (len(BODY), BODY)
    assert site.seen.requests[-1] == (path, "Bearer T1")
    await client.aclose()


async def test_redirects_keep_the_credentials_only_for_their_origin(sites: Callable[[], Site]) -> None:
    registry, storage = sites(), sites()
    path = f"/v2/team/app/blobs/{DIGEST}"
    registry.routes[path] = redirect("/moved")  # same origin: still the registry's credentials
    registry.routes["/moved"] = redirect(f"{storage.url}/presigned?sig=abc")
    storage.routes["/presigned"] = send_blob
    client = UpstreamClient(5.0)
    upstream = Upstream("cache", registry.url, "bob", "secret", 60)
    assert await read(client, upstream) == (len(BODY), BODY)
    assert registry.seen.requests == [(path, None), ("/moved", None)]
    assert storage.seen.requests == [("/presigned?sig=abc", None)]

    # With a Basic challenge answered, the header reaches the registry's hops and not the storage's.
    registry.routes[path] = basic_guard(redirect("/moved"))
    registry.routes["/moved"] = basic_guard(redirect(f"{storage.url}/presigned?sig=abc"))
    assert await read(client, upstream) == (len(BODY), BODY)
    authorized = [auth for p, auth in registry.seen.requests[2:] if auth is not None]
    assert len(authorized) == 2
    assert all(auth.startswith("Basic ") for auth in authorized)
    assert storage.seen.requests[-1] == ("/presigned?sig=abc", None)
    await client.aclose()


def basic_guard(then: Route) -> Route:
    def route(handler: BaseHTTPRequestHandler) -> None:
        if not (handler.headers.get("Authorization") or "").startswith("Basic "):
            handler.send_response(401)
            handler.send_header("WWW-Authenticate", 'Basic realm="test"')
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        then(handler)

    return route


async def test_failures_are_missing_or_down(sites: Callable[[], Site]) -> None:
    site = sites()
    client = UpstreamClient(5.0)
    upstream = Upstream("cache", site.url, None, None, 60)
    with pytest.raises(UpstreamMissing):
        await read(client, upstream)  # 404

    def unavailable(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(503)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    site.routes[f"/v2/team/app/blobs/{DIGEST}"] = unavailable
    with pytest.raises(UpstreamDown):
        await read(client, upstream)

    site.routes[f"/v2/team/app/blobs/{DIGEST}"] = redirect(f"/v2/team/app/blobs/{DIGEST}")  # a loop
    with pytest.raises(UpstreamDown, match="redirects"):
        await read(client, upstream)

    # The body ends before its declared length: an error, never a short blob that looks complete.
    site.routes[f"/v2/team/app/blobs/{DIGEST}"] = lambda h: send_blob(h, BODY[:1000], declared=len(BODY))
    with pytest.raises(UpstreamDown, match="before the end"):
        await read(client, upstream)

    with pytest.raises(UpstreamDown):
        await read(client, Upstream("cache", "http://127.0.0.1:9", None, None, 60))  # nothing listens
    await client.aclose()


async def test_leaving_early_stops_the_read(sites: Callable[[], Site]) -> None:
    site = sites()
    site.routes[f"/v2/team/app/blobs/{DIGEST}"] = send_blob
    client = UpstreamClient(5.0)
    upstream = Upstream("cache", site.url, None, None, 60)
    async with client.blob_stream(upstream, "team/app", DIGEST) as stream:
        async for chunk in stream.chunks:
            assert chunk == BODY[: len(chunk)]
            break
    assert await read(client, upstream) == (len(BODY), BODY)  # and the next fetch works
    await client.aclose()


async def test_slow_upstreams_do_not_hold_up_the_default_threads(sites: Callable[[], Site]) -> None:
    site = sites()
    release = threading.Event()
    loop = asyncio.get_running_loop()
    default_threads = min(32, (os.cpu_count() or 1) + 4)  # asyncio's default executor
    count = default_threads + 2
    answered: list[None] = []
    all_waiting = asyncio.Event()

    def one_more() -> None:
        answered.append(None)
        if len(answered) == count:
            all_waiting.set()

    def slow(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "4")
        handler.end_headers()
        handler.wfile.flush()
        loop.call_soon_threadsafe(one_more)
        release.wait(20)
        handler.wfile.write(b"abcd")

    site.routes[f"/v2/team/app/blobs/{DIGEST}"] = slow
    client = UpstreamClient(30.0)
    upstream = Upstream("cache", site.url, None, None, 60)

    async def fetch() -> bytes:
        async with client.blob_stream(upstream, "team/app", DIGEST) as stream:
            return b"".join([chunk async for chunk in stream.chunks])

    fetches = [asyncio.create_task(fetch()) for _ in range(count)]
    try:
        await asyncio.wait_for(all_waiting.wait(), 10)  # every fetch now waits for its body
        await asyncio.sleep(0.2)
        # Uploads write and hash in the default threads: they are not held up by reads at the upstream's pace.
        assert await asyncio.wait_for(asyncio.to_thread(lambda: 42), 5) == 42
    finally:
        release.set()
    assert await asyncio.gather(*fetches) == [b"abcd"] * count
    await client.aclose()
