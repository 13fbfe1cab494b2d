"""Looking inside pushed images through the Hub API: skopeo pushes two tags of a real two-layer image (the
second changes ``/etc/hello`` and adds a file); the API lists ``/etc``, stats and reads ``/etc/hello`` (indexed on
push in the background or on first request), and diffs the two tags."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Tool, docker_ref
from tests.support.checks import wait_for
from tests.support.images import AMD64, LayoutWriter
from tests.support.oci import OCI_MANIFEST
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients


def _layout(path: Path, seed: str) -> tuple[str, str, set[str]]:
    """Tags v1 and v2: a shared base layer, then a top layer with /etc/hello (changed in v2). Returns the
    manifest digests and the layer digests."""
    writer = LayoutWriter(path)
    base = ({"bin/tool": f"#!tool {seed}\n".encode() * 50, "etc/base": f"{seed}\n".encode()}, {"bin/sh": "tool"})
    digests = []
    layers: set[str] = set()
    for tag, hello, extra in (("v1", b"hello v1\n", {}), ("v2", b"hello v2, longer\n", {"etc/new": b"new\n"})):
        image = writer.image(AMD64, [base, ({"etc/hello": hello, **extra}, {})], f"{seed}-{tag}")
        writer.tag(tag, OCI_MANIFEST, image.manifest, platform=AMD64.as_dict())
        digests.append(image.manifest_digest)
        layers.update(image.layer_digests)
    writer.finish()
    return digests[0], digests[1], layers


def test_browse_read_and_diff_pushed_tags(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, repo: str, seed: str, tmp_path: Path
) -> None:
    layout = tmp_path / "layout"
    v1, v2, layers = _layout(layout, seed)
    for tag in ("v1", "v2"):
        skopeo.run(
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            f"oci:{layout}:{tag}",
            docker_ref(server, repo, tag),
        )
    # Indexed on push, in the background (the event bus enqueues layers.index): the shared base layer once.
    marks = ", ".join(f"'{d}'" for d in sorted(layers))
    ready = f"SELECT COUNT(*) FROM layer_indexes WHERE state = 'ready' AND digest IN ({marks})"  # noqa: S608
    wait_for(lambda: server.query_sql(ready)[0][0] == 3, timeout=60, what="layers indexed on push")
    ns, name = repo.split("/", 1)
    base = f"/api/v2/repositories/{ns}/{name}"

    listing = client.get(f"{base}/tags/v2/files", params={"path": "/etc"})
    assert listing.status_code == 200, listing.text
    body = listing.json()
    assert body["image"]["digest"] == v2
    assert len(body["image"]["layers"]) == 2
    assert body["entry"]["kind"] == "dir"
    names = {e["name"]: e for e in body["entries"]}
    assert set(names) == {"base", "hello", "new"}
    top_layer = body["image"]["layers"][1]["digest"]
    assert names["hello"]["layer"] == top_layer
    assert names["base"]["layer"] == body["image"]["layers"][0]["digest"]
    assert names["hello"]["sha256"] == hashlib.sha256(b"hello v2, longer\n").hexdigest()

    root = client.get(f"{base}/tags/v1/files", params={"path": "/"}).json()
    sh = {e["name"]: e for e in root["entries"]}
    assert set(sh) == {"bin", "etc"}
    link = client.get(f"{base}/tags/v1/files", params={"path": "/bin/sh"}).json()
    assert (link["entry"]["kind"], link["entry"]["link"], link["entries"]) == ("symlink", "tool", None)

    for tag, expected in (("v1", b"hello v1\n"), ("v2", b"hello v2, longer\n")):
        content = client.get(f"{base}/tags/{tag}/files/content", params={"path": "/etc/hello"})
        assert content.status_code == 200, content.text
        assert content.content == expected
        assert content.headers["content-type"] == "application/octet-stream"
        assert content.headers["content-disposition"].startswith("attachment")
    by_digest = client.get(f"{base}/manifests/{v1}/files/content", params={"path": "/etc/../etc/hello"})
    assert by_digest.content == b"hello v1\n"

    missing = client.get(f"{base}/tags/v1/files", params={"path": "/etc/nope"})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["subject"] == "file"
    directory = client.get(f"{base}/tags/v1/files/content", params={"path": "/etc"})
    assert directory.status_code == 400
    assert directory.json()["subject"] == "file"
    assert client.get(f"{base}/tags/nope/files").json()["subject"] == "tag"

    diff = client.get(f"{base}/diff", params={"from": "v1", "to": v2})
    assert diff.status_code == 200, diff.text
    d = diff.json()
    assert (d["from"]["digest"], d["to"]["digest"]) == (v1, v2)
    assert len(d["layers"]["shared"]) == 1
    assert len(d["layers"]["added"]) == 1
    assert len(d["layers"]["removed"]) == 1
    changes = {f["path"]: f for f in d["files"]}
    assert changes["/etc/hello"]["change"] == "changed"
    assert {"size", "sha256"} <= set(changes["/etc/hello"]["fields"])
    assert changes["/etc/new"]["change"] == "added"
    assert d["counts"] == {"added": 1, "removed": 0, "changed": 1}
    assert [c["field"] for c in d["config"]] == ["labels"]
    # The same two images named otherwise (the second answer is the server's remembered diff): each side shows
    # the reference it was asked by, the rest is the same.
    again = client.get(f"{base}/diff", params={"from": v1, "to": v2}).json()
    assert (again["from"]["reference"], again["to"]["reference"]) == (v1, v2)
    assert d["from"]["reference"] == "v1"
    assert {k: v for k, v in again.items() if k not in ("from", "to")} == {
        k: v for k, v in d.items() if k not in ("from", "to")
    }
