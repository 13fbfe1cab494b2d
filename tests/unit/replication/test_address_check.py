"""A replication remote cannot send Dockyard to an address a rule could not name itself: the SSRF guard runs on every
request of the upstream client, each redirect hop included, and the connection goes to the address it checked (a
DNS answer that changes after the check — DNS rebinding — is never used)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown
from dockyard.replication.rules import pinned_transport
from dockyard.settings import load_settings
from dockyard.webhooks.ssrf import Resolver


class _Server:
    """A loopback HTTP server that answers every path with ``reply(path) -> (status, headers)`` and records the
    paths it was asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.hosts: list[str] = []
        self.location = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                outer.hosts.append(self.headers.get("Host", ""))
                if outer.location:
                    self.send_response(307)
                    self.send_header("Location", outer.location)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


Servers = tuple[_Server, _Server]


@pytest.fixture
def servers() -> Iterator[Servers]:
    remote, inner = _Server(), _Server()
    yield remote, inner
    remote.close()
    inner.close()


async def _get(
    tmp_path: Path,
    remote: _Server,
    *,
    host: str = "localhost",
    allow: str = "localhost",
    times: int = 1,
    resolver: Resolver | None = None,
) -> list[int]:
    # By default the rule's remote is allowed by name (localhost); 127.0.0.1 itself is not on the list.
    settings = load_settings(None, data_dir=tmp_path, replication_allowed_hosts=allow)
    client = UpstreamClient(5.0, transport=pinned_transport(settings, resolver))
    statuses: list[int] = []
    try:
        upstream = Upstream("mirror", f"http://{host}:{remote.port}", None, None, 0)
        for _ in range(times):
            response = await client.send(upstream, "GET", "/v2/")
            await response.aclose()
            statuses.append(response.status_code)
        return statuses
    finally:
        await client.aclose()


class _Rebinding:
    """A resolver whose answers for a name change from one question to the next (as a rebinding DNS server's
    do); every other name is not found."""

    def __init__(self, name: str, answers: list[str]) -> None:
        self.name = name
        self.answers = answers
        self.asked = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        assert host == self.name, host
        answer = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [answer]


async def test_a_redirect_to_a_refused_address_is_not_followed(tmp_path: Path, servers: Servers) -> None:
    remote, inner = servers
    remote.location = f"http://127.0.0.1:{inner.port}/secret"
    with pytest.raises(UpstreamDown, match=re.escape("refused to send a request to 127.0.0.1")):
        await _get(tmp_path, remote)
    assert remote.paths == ["/v2/"]
    assert inner.paths == []  # the inner service never saw the request


async def test_a_redirect_to_an_allowed_host_is_followed(tmp_path: Path, servers: Servers) -> None:
    remote, inner = servers
    remote.location = f"http://localhost:{inner.port}/blob"
    assert await _get(tmp_path, remote) == [200]
    assert inner.paths == ["/blob"]


async def test_the_connection_goes_to_the_address_that_was_checked(tmp_path: Path, servers: Servers) -> None:
    remote, _ = servers
    # registry.test resolves to the allowed loopback address, then to the cloud metadata address: the first
    # request is resolved once, checked, and sent to 127.0.0.1 (the system resolver, which knows no such name,
    # is never asked); the second one's new answer is checked and refused before anything is sent.
    resolver = _Rebinding("registry.test", ["127.0.0.1", "169.254.169.254"])
    with pytest.raises(UpstreamDown, match=re.escape("169.254.169.254, a cloud metadata address")):
        await _get(tmp_path, remote, host="registry.test", allow="127.0.0.1", times=2, resolver=resolver)
    assert resolver.asked == 2  # once per request: the address checked is the address connected to
    assert remote.paths == ["/v2/"]
    assert remote.hosts == [f"registry.test:{remote.port}"]  # the name stays in Host


async def test_a_name_that_rebinds_between_two_answers_of_one_request_is_not_reached(
    tmp_path: Path, servers: Servers
) -> None:
    remote, _ = servers
    # With a check before the request and a second resolution to connect, the check would see 127.0.0.1 (allowed)
    # and the connection would go to the second answer; pinned, only the first answer is ever used.
    resolver = _Rebinding("rebind.test", ["127.0.0.1", "10.0.0.1"])
    assert await _get(tmp_path, remote, host="rebind.test", allow="127.0.0.1", resolver=resolver) == [200]
    assert resolver.asked == 1
    assert remote.paths == ["/v2/"]
