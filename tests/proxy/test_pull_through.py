"""The pull-through cache against a real upstream (Debian's docker-registry on loopback): a multi-arch image
pulled through a proxy namespace with skopeo and podman arrives byte for byte and the second pull does not touch
the upstream; a tag moved upstream is seen after the TTL; with the upstream stopped the cached tags still pull
(marked stale); pushes into a proxy namespace are refused."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ACCEPT_ALL_MANIFESTS, Tool
from tests.proxy.conftest import MakeProxy, ReferenceRegistry
from tests.support.images import Layout, blob_digests, build_image_layout, build_multiarch_layout, index_entry
from tests.support.oci import OCI_INDEX, sha256
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.clients

KEEP = "--preserve-digests"


def _push(skopeo: Tool, layout: Layout, reference: ReferenceRegistry, path: str) -> None:
    skopeo.run("copy", KEEP, "--all", "--dest-tls-verify=false", layout.ref, f"docker://{reference.host}/{path}")


def _manifest(dockyard: DockyardServer, name: str, reference: str) -> httpx.Response:
    return httpx.get(f"{dockyard.url}/v2/{name}/manifests/{reference}", headers={"Accept": ACCEPT_ALL_MANIFESTS})


@pytest.fixture
def busybox() -> Path:
    return Path(require_tool("busybox")).resolve()


def test_multiarch_pull_through_then_served_locally(
    skopeo: Tool,
    reference: ReferenceRegistry,
    dockyard: DockyardServer,
    make_proxy: MakeProxy,
    repo: str,
    tmp_path: Path,
    busybox: Path,
) -> None:
    layout = build_multiarch_layout(tmp_path / "layout", repo, busybox=busybox)
    _push(skopeo, layout, reference, f"team/{repo}:v1")
    ns = make_proxy(reference.url)
    before = len(reference.requests())

    out = tmp_path / "first"
    skopeo.run(
        "copy",
        KEEP,
        "--all",
        "--src-tls-verify=false",
        f"docker://{dockyard.host}/{ns}/team/{repo}:v1",
        f"oci:{out}:v1",
    )
    assert index_entry(out, "v1")["digest"] == layout.top_digest
    assert index_entry(out, "v1")["mediaType"] == OCI_INDEX
    assert blob_digests(out) == layout.blob_digests()
    fetched = reference.requests()[before:]
    assert any(r.method == "GET" and "/blobs/" in r.uri for r in fetched)

    # The second pull (within the TTL) is answered from the cache: the upstream sees nothing.
    seen = len(reference.requests())
    again = tmp_path / "second"
    skopeo.run(
        "copy",
        KEEP,
        "--all",
        "--src-tls-verify=false",
        f"docker://{dockyard.host}/{ns}/team/{repo}:v1",
        f"oci:{again}:v1",
    )
    assert blob_digests(again) == layout.blob_digests()
    assert reference.requests()[seen:] == []

    # podman pulls each platform from the cache as well.
    podman = Tool(require_tool("podman"), skopeo.env, skopeo.cwd)
    for image in layout.images:
        platform = f"linux/{image.platform.architecture}" + (
            f"/{image.platform.variant}" if image.platform.variant else ""
        )
        image_id = podman.out(
            "pull", "-q", "--tls-verify=false", "--platform", platform, f"{dockyard.host}/{ns}/team/{repo}:v1"
        )
        assert image_id == image.config_digest.removeprefix("sha256:")
    assert reference.requests()[seen:] == []


def test_tag_moves_after_ttl_and_cached_tags_survive_the_upstream(
    skopeo: Tool,
    reference: ReferenceRegistry,
    dockyard: DockyardServer,
    make_proxy: MakeProxy,
    repo: str,
    tmp_path: Path,
    busybox: Path,
) -> None:
    first = build_image_layout(tmp_path / "a", f"{repo}a", busybox=busybox)
    second = build_image_layout(tmp_path / "b", f"{repo}b", busybox=busybox)
    _push(skopeo, first, reference, f"{repo}:latest")
    ttl = 6.0  # long enough for a push to the upstream on a loaded machine
    ns = make_proxy(reference.url, ttl=int(ttl))
    name = f"{ns}/{repo}"

    fetched_at = time.monotonic()
    response = _manifest(dockyard, name, "latest")
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == first.top_digest
    assert "warning" not in response.headers

    _push(skopeo, second, reference, f"{repo}:latest")
    assert _manifest(dockyard, name, "latest").headers["docker-content-digest"] == first.top_digest  # within TTL
    assert time.monotonic() - fetched_at < ttl  # the answer above was within the TTL
    heads = len(reference.requests("HEAD", "/manifests/latest"))
    time.sleep(max(0.0, fetched_at + ttl + 0.3 - time.monotonic()))
    confirmed_at = time.monotonic()
    moved = _manifest(dockyard, name, "latest")
    assert moved.headers["docker-content-digest"] == second.top_digest
    assert len(reference.requests("HEAD", "/manifests/latest")) == heads + 1  # revalidated with a HEAD
    out = tmp_path / "pulled"
    skopeo.run("copy", KEEP, "--src-tls-verify=false", f"docker://{dockyard.host}/{name}:latest", f"oci:{out}:x")

    reference.stop()
    time.sleep(max(0.0, confirmed_at + ttl + 0.3 - time.monotonic()))
    stale = _manifest(dockyard, name, "latest")
    assert stale.status_code == 200, stale.text
    assert stale.headers["docker-content-digest"] == second.top_digest
    assert stale.headers["warning"] == '110 - "Response is Stale"'
    offline = tmp_path / "offline"
    skopeo.run("copy", KEEP, "--src-tls-verify=false", f"docker://{dockyard.host}/{name}:latest", f"oci:{offline}:x")
    assert blob_digests(offline) == blob_digests(out)
    # Something never cached cannot be served: 503, not a 404 that would claim it does not exist.
    missing = _manifest(dockyard, f"{ns}/never-pulled", "latest")
    assert missing.status_code == 503, missing.text


def test_push_into_a_proxy_namespace_is_denied(
    reference: ReferenceRegistry, dockyard: DockyardServer, make_proxy: MakeProxy, repo: str
) -> None:
    ns = make_proxy(reference.url)
    auth = ("admin", dockyard.ADMIN_PASSWORD)
    started = httpx.post(f"{dockyard.url}/v2/{ns}/{repo}/blobs/uploads/", auth=auth)
    assert started.status_code == 403, started.text
    (error,) = started.json()["errors"]
    assert error["code"] == "DENIED"
    assert "cache of an upstream" in error["message"]
    manifest = json.dumps({"schemaVersion": 2}).encode()
    put = httpx.put(f"{dockyard.url}/v2/{ns}/{repo}/manifests/v1", content=manifest, auth=auth)
    assert put.status_code == 403, put.text
    # A token asked for push gets pull only.
    token = httpx.get(
        f"{dockyard.url}/v2/token",
        params={"scope": f"repository:{ns}/{repo}:pull,push", "service": dockyard.host},
        auth=auth,
    )
    assert token.status_code == 200, token.text
    claims = token.json()["token"].split(".")[1]
    access = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["access"]
    assert access == [{"type": "repository", "name": f"{ns}/{repo}", "actions": ["pull"]}]


def test_unknown_upstream_content_is_a_404(
    reference: ReferenceRegistry, dockyard: DockyardServer, make_proxy: MakeProxy, repo: str
) -> None:
    ns = make_proxy(reference.url)
    assert _manifest(dockyard, f"{ns}/{repo}", "latest").status_code == 404
    blob = httpx.get(f"{dockyard.url}/v2/{ns}/{repo}/blobs/sha256:{sha256(b'nothing')[7:]}")
    assert blob.status_code == 404, blob.text
    assert blob.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
