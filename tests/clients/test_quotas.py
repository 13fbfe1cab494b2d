"""Namespace quotas with real skopeo pushes: a push that fits, one that crosses the soft threshold (exactly one
``quota.warning``), one refused at the hard limit with a message skopeo prints (``quota.exceeded``); a layer
shared by two repositories of a namespace counted once; deleting and collecting lowers the usage; 16 pushers at
once cannot take a namespace past its limit."""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import Tool, docker_ref, make_containers_env
from tests.support.cli import dockyard_cli
from tests.support.images import Layout, build_image_layout
from tests.support.oci import sha256, unique_name
from tests.support.server import DockyardServer, Server

pytestmark = pytest.mark.clients

NO_TLS_DEST = "--dest-tls-verify=false"


def _namespace() -> str:
    return unique_name("quota").split("/")[1]


def _blobs(layout: Layout) -> dict[str, int]:
    """The blobs a push of ``layout`` links (config and layers) and their sizes."""
    found: dict[str, int] = {}
    for image in layout.images:
        for digest in (image.config_digest, *image.layer_digests):
            found[digest] = (layout.path / "blobs" / "sha256" / digest.removeprefix("sha256:")).stat().st_size
    return found


def _usage(client: httpx.Client, ns: str) -> dict[str, Any]:
    response = client.get(f"/api/v2/namespaces/{ns}/quota")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _set_quota(client: httpx.Client, ns: str, **hard: int) -> None:
    response = client.put(f"/api/v2/namespaces/{ns}/quota", json={"hard": hard})
    assert response.status_code == 200, response.text


def _events(server: Server, kind: str, ns: str) -> list[dict[str, Any]]:
    rows = server.query_sql(
        "SELECT payload FROM events WHERE type = :kind AND repository LIKE :prefix ORDER BY id",
        kind=kind,
        prefix=f"{ns}/%",
    )
    return [json.loads(payload) for (payload,) in rows]


def _push(
    skopeo: Tool, server: Server, layout: Layout, repo: str, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return skopeo.run("copy", NO_TLS_DEST, layout.ref, docker_ref(server, repo, layout.tag), check=check)


def _distinct_usage(server: Server, ns: str) -> int:
    """What the namespace links, summed over distinct blobs straight from the links (the recount's rule)."""
    rows = server.query_sql(
        "SELECT COALESCE(SUM(b.size), 0) FROM blobs b WHERE b.digest IN (SELECT rb.digest FROM repository_blobs rb "
        "JOIN repositories r ON r.id = rb.repository_id WHERE r.namespace = :ns)",
        ns=ns,
    )
    return int(rows[0][0])


def test_fits_then_warns_once_then_refused_at_the_hard_limit(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, tmp_path: Path
) -> None:
    ns = _namespace()
    a, b, d = (build_image_layout(tmp_path / name, f"{ns}-{name}") for name in "abd")
    used_a = sum(_blobs(a).values())
    used_ab = sum((_blobs(a) | _blobs(b)).values())
    limit = used_ab * 100 // 80  # B's push reaches 80 %; A's alone stays below it
    assert used_a * 100 < 80 * limit <= used_ab * 100
    _set_quota(client, ns, storage=limit)

    _push(skopeo, server, a, f"{ns}/a")
    assert _usage(client, ns)["used"] == {"storage": used_a, "repositories": 1}
    assert _events(server, "quota.warning", ns) == []

    _push(skopeo, server, b, f"{ns}/b")
    assert _usage(client, ns)["used"]["storage"] == used_ab
    warnings = _events(server, "quota.warning", ns)
    assert warnings == [{"namespace": ns, "quota": "storage", "used": used_ab, "limit": limit, "soft_percent": 80}]

    _push(skopeo, server, a, f"{ns}/c")  # A again, into a third repository: no new bytes, no second warning
    assert _usage(client, ns)["used"] == {"storage": used_ab, "repositories": 3}
    assert len(_events(server, "quota.warning", ns)) == 1

    hard = used_ab + 1
    _set_quota(client, ns, storage=hard)
    refused = _push(skopeo, server, d, f"{ns}/d", check=False)
    assert refused.returncode != 0
    assert "quota exceeded" in refused.stderr, refused.stderr
    assert f"of limit {hard} bytes" in refused.stderr, refused.stderr
    assert _usage(client, ns)["used"]["storage"] == used_ab  # the refused blob counts for nothing
    exceeded = _events(server, "quota.exceeded", ns)
    assert exceeded
    assert all(e["quota"] == "storage" and e["limit"] == hard for e in exceeded)
    assert len(_events(server, "quota.warning", ns)) == 1
    assert _distinct_usage(server, ns) == used_ab


def _gc(server: DockyardServer) -> None:
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env}
    result = dockyard_cli("gc", "--grace-seconds", "0", env=env)
    assert result.returncode == 0, result.stderr


def test_shared_layers_count_once_and_delete_plus_gc_lowers_usage(fresh_server: DockyardServer, tmp_path: Path) -> None:
    skopeo = make_containers_env(tmp_path / "containers", fresh_server).tool("skopeo")
    ns = _namespace()
    image = build_image_layout(tmp_path / "image", f"{ns}-shared")
    other = build_image_layout(tmp_path / "other", f"{ns}-other")
    size = sum(_blobs(image).values())
    both = sum((_blobs(image) | _blobs(other)).values())
    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        # a storage limit (never reached) keeps out the SBOM referrers the server attaches to images elsewhere
        # (docs/scanning.md): only what skopeo pushes is counted here
        _set_quota(client, ns, storage=10**12)
        _push(skopeo, fresh_server, image, f"{ns}/one")
        _push(skopeo, fresh_server, image, f"{ns}/two")
        assert _usage(client, ns)["used"] == {"storage": size, "repositories": 2}  # shared: counted once
        _push(skopeo, fresh_server, other, f"{ns}/two")
        assert _usage(client, ns)["used"]["storage"] == both

        # ns/two drops both images; the first stays linked by ns/one, so only the other's own blobs go.
        for layout in (image, other):
            digest = layout.top_digest
            assert client.delete(f"/v2/{ns}/two/manifests/{digest}").status_code == 202
        assert _usage(client, ns)["used"]["storage"] == both  # links stay until collected
        _gc(fresh_server)
        assert _usage(client, ns)["used"]["storage"] == size

        assert client.delete(f"/v2/{ns}/one/manifests/{image.top_digest}").status_code == 202
        _gc(fresh_server)
        assert _usage(client, ns)["used"]["storage"] == 0
        assert _distinct_usage(fresh_server, ns) == 0

        # Deleting a repository releases its links and its count at once.
        _push(skopeo, fresh_server, other, f"{ns}/three")
        assert _usage(client, ns)["used"] == {"storage": sum(_blobs(other).values()), "repositories": 3}
        assert client.delete(f"/api/v2/namespaces/{ns}/repositories/three").status_code in (202, 204)
        assert _usage(client, ns)["used"] == {"storage": 0, "repositories": 2}


def test_sixteen_parallel_pushers_cannot_overshoot_the_hard_limit(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, tmp_path: Path
) -> None:
    ns = _namespace()
    base = build_image_layout(tmp_path / "base", f"{ns}-base")
    _set_quota(client, ns, storage=10**12)  # no SBOM referrers of the server's own (docs/scanning.md) meanwhile
    _push(skopeo, server, base, f"{ns}/base")  # the shared busybox layer is counted from here on
    used = _usage(client, ns)["used"]["storage"]
    layouts = [build_image_layout(tmp_path / f"p{i}", f"{ns}-p{i}") for i in range(16)]
    new = sorted(
        sum(size for digest, size in _blobs(layout).items() if digest not in _blobs(base)) for layout in layouts
    )
    limit = used + sum(new[:8])  # room for about half of them
    _set_quota(client, ns, storage=limit)

    def push(index: int) -> int:
        return _push(skopeo, server, layouts[index], f"{ns}/p{index}", check=False).returncode

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(push, range(16)))

    final = _usage(client, ns)["used"]["storage"]
    assert final <= limit  # the check and the count are one statement under the usage row's lock
    assert _distinct_usage(server, ns) == final  # kept exactly under concurrency
    assert 0 < codes.count(0) < 16, codes
    assert _events(server, "quota.exceeded", ns)


def test_repository_count_quota_refuses_a_new_repository(server: DockyardServer, client: httpx.Client) -> None:
    ns = _namespace()
    _set_quota(client, ns, repositories=1)
    assert (
        client.post(f"/v2/{ns}/one/blobs/uploads/", params={"digest": sha256(b"one")}, content=b"one").status_code
        == 201
    )
    refused = client.post(f"/v2/{ns}/two/blobs/uploads/", params={"digest": sha256(b"two")}, content=b"two")
    assert refused.status_code == 403, refused.text
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert error["message"] == f"quota exceeded: namespace '{ns}' repository count quota, used 2 of limit 1"
    assert _usage(client, ns)["used"] == {"storage": 3, "repositories": 1}
    assert [e["quota"] for e in _events(server, "quota.exceeded", ns)] == ["repositories"]
    # The Hub API's door is held to the same limit, and its refusal is recorded the same way.
    by_api = client.post(f"/api/v2/namespaces/{ns}/repositories", json={"name": "three"})
    assert by_api.status_code == 403, by_api.text
    assert "repository count quota" in by_api.json()["detail"]
    assert [e["quota"] for e in _events(server, "quota.exceeded", ns)] == ["repositories", "repositories"]
