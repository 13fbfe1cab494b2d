"""Fixtures for the pull-through cache tests: a real upstream (Debian's ``docker-registry``, CNCF distribution, on
loopback, whose JSON log counts the requests it served), a secure Dockyard whose administrator makes proxy
namespaces, and the container tools' isolated environment (``tests/clients/conftest.py``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ContainersEnv, Tool, make_containers_env
from tests.support.checks import unique, wait_for
from tests.support.hub import HubAdmin
from tests.support.ports import free_port
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

CONFIG = """\
version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
"""


_MARKER = "log-marker="  # the query of the requests that ``ReferenceRegistry.requests`` sends itself


@dataclass(frozen=True)
class Request:
    method: str
    uri: str
    status: int


class ReferenceRegistry:
    """``docker-registry serve`` over a directory of its own; ``stop``/``start`` keep port and content."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log_path = workdir / "registry.log"
        self.process: subprocess.Popen[bytes] | None = None
        config = workdir / "config.yml"
        config.write_text(CONFIG.format(root=workdir / "storage", port=self.port))
        self.config = config

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> None:
        executable = shutil.which("docker-registry") or require_tool("docker-registry")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [executable, "serve", str(self.config)], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/v2/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def requests(self, method: str | None = None, contains: str = "") -> list[Request]:
        """The requests it answered (from its log), optionally of one method and with ``contains`` in the URI.

        The registry writes a request's line after the response went out, so its client can be done before the
        line is: on a running registry a marker request is sent first and its line awaited, by which time the
        lines of what was answered before are written too (they were due first)."""
        if self.process is not None and self.process.poll() is None:
            marker = f"/v2/?{_MARKER}{uuid.uuid4().hex}"
            httpx.get(f"{self.url}{marker}", timeout=30)
            wait_for(
                lambda: marker in self.log_path.read_text(errors="replace"), what=f"the registry's log of {marker}"
            )
        found: list[Request] = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            uri = doc.get("http.request.uri")
            if not isinstance(uri, str) or "http.response.status" not in doc or _MARKER in uri:
                continue
            if (method is None or doc.get("http.request.method") == method) and contains in uri:
                found.append(Request(doc["http.request.method"], uri, int(doc["http.response.status"])))
        return found


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[ReferenceRegistry]:
    workdir = tmp_path / "reference"
    workdir.mkdir()
    registry = ReferenceRegistry(workdir)
    registry.start()
    yield registry
    registry.stop()


@pytest.fixture(scope="module")
def dockyard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    root = tmp_path_factory.mktemp("proxy")
    server = DockyardServer(root / "data", secure=True)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(dockyard: DockyardServer) -> Iterator[HubAdmin]:
    hub = HubAdmin(dockyard)
    yield hub
    hub.close()


MakeProxy = Callable[..., str]


def add_proxy(
    hub: HubAdmin,
    upstream_url: str,
    *,
    ttl: int = 300,
    username: str | None = None,
    password: str | None = None,
    public: bool = True,
    namespace: str | None = None,
) -> str:
    """An organization made a proxy of ``upstream_url`` by the administrator (its repositories public or not)."""
    if namespace is None:
        namespace = hub.org("admin", "cache")
    else:
        created = hub.client.post("/api/v2/orgs", json={"orgname": namespace, "owner": "admin"})
        assert created.status_code == 201, created.text
    changed = hub.client.patch(f"/api/v2/orgs/{namespace}", json={"default_private": not public})
    assert changed.status_code == 200, changed.text
    body = {"namespace": namespace, "upstream_url": upstream_url, "tag_ttl_seconds": ttl}
    if username is not None:
        body |= {"username": username, "password": password}
    response = hub.client.post("/api/v2/proxies", json=body)
    assert response.status_code == 201, response.text
    time.sleep(2.1)  # other processes' view of the proxies is refreshed every 2 s (proxy.manage.CACHE_SECONDS)
    return namespace


@pytest.fixture
def make_proxy(admin: HubAdmin) -> MakeProxy:
    def make(upstream_url: str, **options: object) -> str:
        return add_proxy(admin, upstream_url, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def tools(tmp_path: Path, dockyard: DockyardServer) -> ContainersEnv:
    return make_containers_env(tmp_path / "containers", dockyard)


@pytest.fixture
def skopeo(tools: ContainersEnv) -> Tool:
    return tools.tool("skopeo")


@pytest.fixture
def repo() -> str:
    return unique("img")
