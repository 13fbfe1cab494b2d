"""Pull replication from sources that do not show their ``/v2/_catalog``: a rule that names its repository lists
only that repository's tags (the catalog is never asked for); a pattern on a source that refuses the catalog fails
the run at once with a clear error — unless the source is a Dockyard, whose Hub API lists a namespace's
repositories. The sources are Debian's ``docker-registry`` and a second Dockyard, each behind a front that answers
403 to the catalog and passes everything else on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.proxy.conftest import ReferenceRegistry
from tests.replication.conftest import TwoStepUploads, add_rule, remote_digest, start_run, wait_run
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.oci import push_image
from tests.support.server import DockyardServer

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class CatalogRefusingFront:
    """A loopback HTTP front for ``target`` that answers ``GET /v2/_catalog`` with 403 (as a registry that keeps
    its catalog to some accounts does) and passes every other GET and HEAD on; records the paths asked for."""

    def __init__(self, target: str) -> None:
        self.paths: list[str] = []
        outer = self
        client = httpx.Client(base_url=target, timeout=60, follow_redirects=False)
        self.client = client

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self, method: str) -> None:
                outer.paths.append(self.path)
                if self.path.split("?", 1)[0] == "/v2/_catalog":
                    body = b'{"errors":[{"code":"DENIED","message":"no catalog for you"}]}'
                    self._answer(403, {"Content-Type": "application/json"}, body, method)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                headers["Accept-Encoding"] = "identity"
                response = client.request(method, self.path, headers=headers)
                kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP}
                if method == "HEAD" and "content-length" in response.headers:
                    kept["Content-Length"] = response.headers["content-length"]
                self._answer(response.status_code, kept, response.content, method)

            def _answer(self, status: int, headers: dict[str, str], body: bytes, method: str) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if method != "HEAD" or "Content-Length" not in headers:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(body)

            def do_GET(self) -> None:
                self._forward("GET")

            def do_HEAD(self) -> None:
                self._forward("HEAD")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()

    def catalog_requests(self) -> int:
        return sum(1 for path in self.paths if path.startswith("/v2/_catalog"))


@pytest.fixture
def front(reference: ReferenceRegistry) -> Iterator[CatalogRefusingFront]:
    proxy = CatalogRefusingFront(reference.url)
    yield proxy
    proxy.close()


@pytest.fixture
def upstream(reference: ReferenceRegistry) -> Iterator[httpx.Client]:
    with TwoStepUploads(base_url=reference.url, timeout=30) as client:
        yield client


def test_a_named_repository_is_pulled_without_the_catalog(
    admin: HubAdmin, dockyard: DockyardServer, org: str, upstream: httpx.Client, front: CatalogRefusingFront
) -> None:
    app = unique("app")
    one = push_image(upstream, f"vendor/{app}", "1.0")
    two = push_image(upstream, f"vendor/{app}", "2.0")
    rule = add_rule(
        admin, org, direction="pull", remote_url=front.url, remote_namespace="vendor", repository_filter=app
    )
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "succeeded", run
    auth = ("admin", dockyard.ADMIN_PASSWORD)
    assert remote_digest(dockyard.url, f"{org}/{app}", "1.0", auth) == one.digest
    assert remote_digest(dockyard.url, f"{org}/{app}", "2.0", auth) == two.digest
    assert front.catalog_requests() == 0
    assert any(path.startswith(f"/v2/vendor/{app}/tags/list") for path in front.paths)


def test_a_pattern_on_a_source_that_refuses_its_catalog_fails_at_once(
    admin: HubAdmin, org: str, upstream: httpx.Client, front: CatalogRefusingFront
) -> None:
    push_image(upstream, f"vendor/{unique('app')}", "1.0")
    rule = add_rule(admin, org, direction="pull", remote_url=front.url, remote_namespace="vendor")
    run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    assert run["state"] == "failed", run
    assert run["attempts"] == 1  # another attempt would be refused the same way
    assert "GET /v2/_catalog answered 403" in run["error"], run
    assert "name the repositories" in run["error"], run
    assert run["results"] == []
    assert front.catalog_requests() == 1


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path_factory.mktemp("source") / "data", secure=True)
    server.start()
    yield server
    server.stop()


def test_a_pattern_on_a_dockyard_is_listed_by_its_hub_api(
    admin: HubAdmin, dockyard: DockyardServer, org: str, source: DockyardServer
) -> None:
    source_auth = ("admin", source.ADMIN_PASSWORD)
    app = unique("app")
    with httpx.Client(base_url=source.url, auth=source_auth, timeout=60) as client:
        image = push_image(client, f"admin/{app}", "v1")  # private: only the rule's account sees it
    front = CatalogRefusingFront(source.url)
    try:
        rule = add_rule(
            admin,
            org,
            direction="pull",
            remote_url=front.url,
            remote_namespace="admin",
            username="admin",
            password=source.ADMIN_PASSWORD,
        )
        run = wait_run(admin, org, start_run(admin, org, rule["name"])["id"])
    finally:
        front.close()
    assert run["state"] == "succeeded", run
    assert front.catalog_requests() >= 1
    assert any(path.startswith("/api/v2/namespaces/admin/repositories") for path in front.paths)
    assert remote_digest(dockyard.url, f"{org}/{app}", "v1", ("admin", dockyard.ADMIN_PASSWORD)) == image.digest
