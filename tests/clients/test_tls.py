"""``dockyard serve --tls-cert --tls-key``: HTTPS that skopeo and podman verify against a test CA (``--cert-dir``),
TLS 1.2 at least, and a certificate replaced on disk served to new connections without a restart — through the
supervisor's two worker processes, each reloading on its own."""

from __future__ import annotations

import os
import socket
import ssl
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ContainersEnv, Tool, get_manifest, make_containers_env
from tests.support.images import Layout
from tests.support.server import DockyardServer
from tests.support.tls import ServerCert, TestCA, served_serial

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("tls-ca"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, ca: TestCA) -> Iterator[DockyardServer]:
    first = ca.issue("server")
    served = ca.directory / "served"
    served.mkdir()
    cert, key = served / "tls.crt", served / "tls.key"
    cert.write_bytes(first.cert.read_bytes())
    key.write_bytes(first.key.read_bytes())
    data_dir = tmp_path_factory.mktemp("dockyard-tls") / "data"
    srv = DockyardServer(
        data_dir, env={"DOCKYARD_WORKERS": "2", "DOCKYARD_TLS_CERT": str(cert), "DOCKYARD_TLS_KEY": str(key)}
    )
    srv.scheme = "https"
    srv.verify = ca.client_context()
    srv.start(timeout=120)
    yield srv
    srv.stop()


@pytest.fixture
def verifying_env(tmp_path: Path, tls_server: DockyardServer) -> ContainersEnv:
    """The tools' isolated environment, with the server *not* marked insecure: TLS is verified."""
    env = make_containers_env(tmp_path / "containers", tls_server)
    (env.root / "registries.conf").write_text("unqualified-search-registries = []\n")
    return env


def _replace(target: Path, source: Path) -> None:
    """Replace ``target`` atomically, as ``mv`` (or cert-manager, or certbot's symlink switch) does."""
    staging = target.with_suffix(".new")
    staging.write_bytes(source.read_bytes())
    os.replace(staging, target)


def test_serves_https_only_with_tls_12_or_newer(tls_server: DockyardServer, ca: TestCA) -> None:
    response = httpx.get(f"{tls_server.url}/v2/", verify=ca.client_context(), timeout=30)
    assert response.status_code == 200, response.text
    assert "serving on https://" in tls_server.log_path.read_text()

    modern = ca.client_context()
    with (
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw,
        modern.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
        assert tls.selected_alpn_protocol() in (None, "http/1.1")

    old = ca.client_context()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.0/1.1: deprecated, which is the point
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    old.set_ciphers("ALL:@SECLEVEL=0")
    with (
        pytest.raises((ssl.SSLError, ConnectionError)),
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as raw,
        old.wrap_socket(raw, server_hostname="127.0.0.1"),
    ):
        pass

    # A client that does not trust the CA is refused by its own verification.
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.url}/v2/", timeout=30)


def test_skopeo_and_podman_push_and_pull_with_the_test_ca(
    verifying_env: ContainersEnv, tls_server: DockyardServer, ca: TestCA, image_layout: Layout, repo: str
) -> None:
    skopeo: Tool = verifying_env.tool("skopeo")
    target = f"docker://{tls_server.host}/{repo}:v1"
    refused = skopeo.run("copy", image_layout.ref, target, check=False)
    assert refused.returncode != 0
    assert "certificate" in refused.stderr, refused.stderr

    skopeo.run("copy", "--preserve-digests", "--dest-cert-dir", str(ca.cert_dir), image_layout.ref, target)
    inspected = skopeo.json("inspect", "--raw", "--cert-dir", str(ca.cert_dir), target)
    assert inspected["mediaType"]
    with httpx.Client(base_url=tls_server.url, verify=ca.client_context(), timeout=60) as client:
        response = get_manifest(client, repo, "v1")
        assert response.status_code == 200, response.text
        assert response.headers["docker-content-digest"] == image_layout.top_digest
    out = verifying_env.root / "pulled"
    skopeo.run("copy", "--src-cert-dir", str(ca.cert_dir), target, f"oci:{out}:v1")
    assert (out / "index.json").exists()

    podman: Tool = verifying_env.tool("podman")
    image_id = podman.out("pull", "-q", image_layout.ref)
    name = f"{tls_server.host}/{repo}:v2"
    podman.run("tag", image_id, name)
    podman.run("push", "--cert-dir", str(ca.cert_dir), name)
    podman.run("rmi", "-f", image_id)
    assert podman.out("pull", "-q", "--cert-dir", str(ca.cert_dir), name) == image_id


def test_a_replaced_certificate_is_served_to_new_connections_without_restart(
    tls_server: DockyardServer, ca: TestCA
) -> None:
    assert tls_server.process is not None
    pid = tls_server.process.pid
    before = served_serial("127.0.0.1", tls_server.port, ca)
    second: ServerCert = ca.issue("server-renewed")
    assert second.serial != before
    served = ca.directory / "served"
    with httpx.Client(base_url=tls_server.url, verify=ca.client_context(), timeout=30) as open_connection:
        assert open_connection.get("/v2/").status_code == 200
        _replace(served / "tls.key", second.key)  # the key first: until the certificate follows, the pair
        _replace(served / "tls.crt", second.cert)  # does not load and the old one stays in use
        # Every worker takes the new pair within its check interval; several new connections reach both workers.
        deadline = time.monotonic() + 30
        serials: list[int] = []
        while time.monotonic() < deadline:
            serials = [served_serial("127.0.0.1", tls_server.port, ca) for _ in range(8)]
            if set(serials) == {second.serial}:
                break
            time.sleep(0.5)
        assert set(serials) == {second.serial}, (serials, before, second.serial)
        # The connection opened before the replacement keeps working.
        assert open_connection.get("/v2/").status_code == 200
    assert tls_server.process.pid == pid
    assert tls_server.process.poll() is None
    assert httpx.get(f"{tls_server.url}/v2/", verify=ca.client_context(), timeout=30).status_code == 200
