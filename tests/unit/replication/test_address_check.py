"""A replication remote cannot redirect Dockyard to an address a rule could not name itself: the SSRF guard runs on
every request of the upstream client, each redirect hop included."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown
from dockyard.replication.rules import address_check
from dockyard.settings import load_settings


class _Server:
    """A loopback HTTP server that answers every path with ``reply(path) -> (status, headers)`` and records the
    paths it was asked for."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.location = ""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
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


async def _get(tmp_path: Path, remote: _Server) -> int:
    # The rule's remote is allowed by name (localhost); 127.0.0.1 itself is not on the list.
    settings = load_settings(None, data_dir=tmp_path, replication_allowed_hosts="localhost")
    client = UpstreamClient(5.0, check=address_check(settings))
    try:
        upstream = Upstream("mirror", f"http://localhost:{remote.port}", None, None, 0)
        response = await client.send(upstream, "GET", "/v2/")
        await response.aclose()
        return response.status_code
    finally:
        await client.aclose()


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
    assert await _get(tmp_path, remote) == 200
    assert inner.paths == ["/blob"]
