"""A proxy whose upstream is a second Dockyard with authentication: the proxy's credentials go through the
upstream's Docker token flow (401 challenge → ``/v2/token`` with Basic credentials → bearer token), sealed at
rest; without them the upstream's private repository is a 404 through the proxy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import Tool
from tests.proxy.conftest import MakeProxy
from tests.support.checks import wait_for
from tests.support.images import blob_digests, build_image_layout, index_entry
from tests.support.oci import OCI_EMPTY, OCI_MANIFEST, canonical, descriptor, push_blob, sha256
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.clients


def _push_referrer(upstream: DockyardServer, name: str, subject: str, subject_type: str) -> str:
    """Push an artifact whose ``subject`` is the image (as an SBOM or a signature is) to the upstream."""
    with httpx.Client(base_url=upstream.url, auth=("admin", upstream.ADMIN_PASSWORD), timeout=30) as client:
        empty = b"{}"
        sbom = b'{"spdxVersion": "SPDX-2.3"}'
        push_blob(client, name, empty)
        push_blob(client, name, sbom)
        manifest = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": "application/spdx+json",
                "config": descriptor(OCI_EMPTY, empty),
                "layers": [descriptor("application/spdx+json", sbom)],
                "subject": {"mediaType": subject_type, "digest": subject, "size": 0},
            }
        )
        digest = sha256(manifest)
        put = client.put(f"/v2/{name}/manifests/{digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert put.status_code == 201, put.text
        return digest


def _referrers(dockyard: DockyardServer, name: str, digest: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{dockyard.url}/v2/{name}/referrers/{digest}")
    if response.status_code != 200:
        return []
    manifests: list[dict[str, Any]] = response.json()["manifests"]
    return manifests


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path / "upstream" / "data", secure=True)
    server.data_dir.parent.mkdir(parents=True)
    server.start()
    yield server
    server.stop()


def test_credentials_follow_the_token_flow(
    skopeo: Tool, upstream: DockyardServer, dockyard: DockyardServer, make_proxy: MakeProxy, repo: str, tmp_path: Path
) -> None:
    layout = build_image_layout(tmp_path / "layout", repo, busybox=Path(require_tool("busybox")).resolve())
    creds = f"admin:{upstream.ADMIN_PASSWORD}"
    path = f"private/{repo}:v1"  # the administrator's push creates the organization; its repositories are private
    skopeo.run(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        layout.ref,
        f"docker://{upstream.host}/{path}",
    )

    referrer = _push_referrer(upstream, f"private/{repo}", layout.top_digest, layout.top_media_type)

    anonymous = make_proxy(upstream.url)
    refused = skopeo.run("inspect", "--tls-verify=false", f"docker://{dockyard.host}/{anonymous}/{path}", check=False)
    assert refused.returncode != 0
    assert "manifest unknown" in refused.stderr.lower() or "not found" in refused.stderr.lower(), refused.stderr

    ns = make_proxy(upstream.url, username="admin", password=upstream.ADMIN_PASSWORD)
    out = tmp_path / "out"
    skopeo.run(
        "copy", "--preserve-digests", "--src-tls-verify=false", f"docker://{dockyard.host}/{ns}/{path}", f"oci:{out}:v1"
    )
    assert index_entry(out, "v1")["digest"] == layout.top_digest
    assert blob_digests(out) == layout.blob_digests()
    # The upstream's referrers of the image (here an SBOM-like artifact) come with it (and, if the upstream had
    # attached it by then, the SBOM its inventory job attaches: annotated dev.dockyard.sbom, set aside here).
    found = wait_for(
        lambda: (
            [
                m["digest"]
                for m in _referrers(dockyard, f"{ns}/private/{repo}", layout.top_digest)
                if "dev.dockyard.sbom" not in (m.get("annotations") or {})
            ]
            or None
        ),
        timeout=20,
    )
    assert found == [referrer]
    # The password is stored sealed, never as given.
    (stored,) = dockyard.query_sql("SELECT password FROM proxies WHERE namespace = :ns", ns=ns)
    assert stored[0]
    assert upstream.ADMIN_PASSWORD not in stored[0]
