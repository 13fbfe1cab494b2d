"""The reverse-proxy recipe ``deploy/nginx/dockyard.conf``, run as written — only its port, upstream address and
certificate paths replaced — by Debian's nginx as an unprivileged process, terminating TLS (a test CA) in front of
a Dockyard with ``trusted_proxies``: the token realm follows the proxy's scheme and host, and skopeo, verifying
the certificate, pushes and pulls through it with credentials."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import make_containers_env
from tests.support.images import Layout, index_entry
from tests.support.ports import free_port
from tests.support.server import REPO_ROOT, DockyardServer
from tests.support.tls import TestCA
from tests.support.tools import require_tool

pytestmark = pytest.mark.clients

RECIPE = REPO_ROOT / "deploy" / "nginx" / "dockyard.conf"
NOBODY = 65534


@dataclass
class Proxy:
    port: int
    ca: TestCA
    directory: Path

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


def templated(recipe: str, *, port: int, upstream: str, cert: Path, key: Path) -> str:
    """The recipe with the site-specific values replaced; each must occur exactly once, nothing else changes."""
    for old, new in (
        ("listen 443 ssl;", f"listen {port} ssl;"),
        ("server 127.0.0.1:5000;", f"server {upstream};"),
        ("/etc/dockyard/tls/fullchain.pem", str(cert)),
        ("/etc/dockyard/tls/privkey.pem", str(key)),
    ):
        assert recipe.count(old) == 1, old
        recipe = recipe.replace(old, new)
    return recipe


def _unprivileged(argv: list[str]) -> list[str]:
    """Run ``argv`` as nobody when the tests run as root (nginx needs no privilege with this recipe)."""
    if os.geteuid() != 0:
        return argv
    return [require_tool("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"nginx exited {process.returncode}: {log.read_text(errors='replace')}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nginx did not listen: {log.read_text(errors='replace')}")


@pytest.fixture
def dockyard(tmp_path: Path) -> Iterator[DockyardServer]:
    srv = DockyardServer(tmp_path / "data", env={"DOCKYARD_TRUSTED_PROXIES": "127.0.0.1"}, secure=True)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def proxy(dockyard: DockyardServer) -> Iterator[Proxy]:
    nginx = require_tool("nginx")
    # Not under pytest's private (0700) temporary directory: the unprivileged nginx reads and writes here.
    directory = Path(tempfile.mkdtemp(prefix="dockyard-nginx-"))
    try:
        ca = TestCA(directory / "ca")
        pair = ca.issue("proxy")
        port = free_port()
        conf = directory / "dockyard.conf"
        conf.write_text(templated(RECIPE.read_text(), port=port, upstream=dockyard.host, cert=pair.cert, key=pair.key))
        error_log = directory / "error.log"
        main = directory / "nginx.conf"
        # The main configuration a distribution ships (pid, logs and temporary files, here in the test's directory)
        # around the recipe, which is included unchanged but for the values above.
        temp_paths = "\n".join(
            f"    {name}_temp_path {directory / name};" for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        main.write_text(
            f"daemon off;\nworker_processes 1;\npid {directory / 'nginx.pid'};\nerror_log {error_log} info;\n"
            "events { worker_connections 256; }\n"
            f"http {{\n    access_log {directory / 'access.log'};\n{temp_paths}\n    include {conf};\n}}\n"
        )
        if os.geteuid() == 0:
            for path in [directory, *directory.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
        log = directory / "nginx.out"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _unprivileged([nginx, "-p", str(directory), "-c", str(main), "-e", str(error_log)]),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for_port(port, process, error_log)
            if os.geteuid() == 0:
                owners = subprocess.run(
                    ["ps", "-o", "uid=", "--ppid", str(process.pid), "-p", str(process.pid)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                assert owners, "no nginx process found"
                assert set(owners) == {str(NOBODY)}, owners
            yield Proxy(port, ca, directory)
        finally:
            process.terminate()
            process.wait(timeout=30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_nginx_recipe_terminates_tls_for_skopeo(
    proxy: Proxy, dockyard: DockyardServer, image_layout: Layout, repo: str, tmp_path: Path
) -> None:
    # Through the proxy the token realm is the proxy's https URL (X-Forwarded-Proto and Host, believed from the
    # trusted proxy); directly it stays Dockyard's own http URL.
    with httpx.Client(base_url=f"https://{proxy.host}", verify=proxy.ca.client_context(), timeout=60) as client:
        challenge = client.get("/v2/")
        assert challenge.status_code == 401
        assert f'realm="https://{proxy.host}/' in challenge.headers["www-authenticate"]
    direct = httpx.get(f"{dockyard.url}/v2/", timeout=30)
    assert f'realm="http://{dockyard.host}/' in direct.headers["www-authenticate"]

    env = make_containers_env(tmp_path / "containers", dockyard)
    (env.root / "registries.conf").write_text("unqualified-search-registries = []\n")  # verify TLS
    skopeo = env.tool("skopeo")
    creds = f"admin:{dockyard.ADMIN_PASSWORD}"
    target = f"docker://{proxy.host}/admin/{repo.split('/', 1)[1]}:v1"
    skopeo.run(
        "copy", "--preserve-digests", "--dest-cert-dir", str(proxy.ca.cert_dir), "--dest-creds", creds,
        image_layout.ref, target,
    )  # fmt: skip
    out = tmp_path / "pulled"
    skopeo.run("copy", "--src-cert-dir", str(proxy.ca.cert_dir), "--src-creds", creds, target, f"oci:{out}:v1")
    assert index_entry(out, "v1")["digest"] == image_layout.top_digest
    # nginx's access log saw the pushes: the traffic went through the proxy.
    assert "PUT /v2/admin/" in (proxy.directory / "access.log").read_text()
