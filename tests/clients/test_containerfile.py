"""Dockyard's own Containerfile builds with buildah (no Docker engine) and the image is pushed into Dockyard.

The build needs a base image with Python; with no public registry reachable, the test makes one from Debian
bookworm packages with mmdebstrap (python3 + python3-venv) and passes it as ``--build-arg BASE``. The build's
RUN step installs Dockyard from the lock file (PyPI).
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Tool, get_manifest
from tests.support.backend import current as current_backend
from tests.support.oci import unique_name
from tests.support.server import REPO_ROOT, DockyardServer
from tests.support.tools import require_tool

pytestmark = [pytest.mark.clients, pytest.mark.slow]


@pytest.mark.timeout(900)
def test_containerfile_builds_and_pushes_into_dockyard(
    buildah: Tool, server: DockyardServer, client: httpx.Client, tmp_path: Path
) -> None:
    if current_backend() != "embedded":
        pytest.skip("built once per suite run, in the embedded pass (the image does not depend on the backend)")
    mmdebstrap = require_tool("mmdebstrap")
    rootfs = tmp_path / "bookworm-python.tar"
    Tool(mmdebstrap, buildah.env, tmp_path).run(
        "--variant=apt",
        "--include=python3,python3-venv,ca-certificates",
        "--format=tar",
        "bookworm",
        str(rootfs),
        timeout=600,  # ~40 MB from the Debian mirror, unpacked and configured: 120 s was not enough on a busy machine
    )
    base = "localhost/dockyard-test-base:bookworm"
    ctr = buildah.out("from", "scratch").strip()
    buildah.run("add", ctr, str(rootfs), "/")
    # This machine reaches PyPI through an intercepting proxy: the base trusts the same CAs as the host.
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    buildah.run("copy", ctr, bundle, "/etc/ssl/certs/dockyard-build-ca.crt")
    buildah.run(
        "config",
        "--env",
        "SSL_CERT_FILE=/etc/ssl/certs/dockyard-build-ca.crt",
        "--env",
        "PIP_CERT=/etc/ssl/certs/dockyard-build-ca.crt",
        ctr,
    )
    buildah.run("commit", "--rm", ctr, base)
    image = "localhost/dockyard:test"
    buildah.run(
        "bud",
        "--isolation",
        "chroot",
        "--network",
        "host",
        "--build-arg",
        f"BASE={base}",
        "-f",
        str(REPO_ROOT / "Containerfile"),
        "-t",
        image,
        str(REPO_ROOT),
    )
    # The image runs the dockyard command.
    version = buildah.out(
        "run", "--isolation", "chroot", buildah.out("from", image).strip(), "--", "dockyard", "--version"
    )
    assert "dockyard" in version
    repo = unique_name("dockyard")
    digest_file = tmp_path / "digest"
    buildah.run(
        "push", "--tls-verify=false", "--digestfile", str(digest_file), image, f"docker://{server.host}/{repo}:test"
    )
    response = get_manifest(client, repo, "test")
    assert response.status_code == 200
    assert response.headers["docker-content-digest"] == digest_file.read_text().strip()
    assert os.environ.get("CI") != "true" or response.json()["layers"]
