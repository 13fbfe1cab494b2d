"""skopeo against Dockyard: multi-arch copy in and out with identical digests, inspect, list-tags, delete, and
Docker schema 2 (``--format v2s2``) round trips."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Tool, access_log, assert_blob, docker_ref, get_manifest
from tests.support.images import Layout, blob_digests, index_entry, read_blob
from tests.support.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients

NO_TLS_DEST = "--dest-tls-verify=false"
NO_TLS_SRC = "--src-tls-verify=false"
NO_TLS = "--tls-verify=false"
# Fail rather than let skopeo edit a manifest (e.g. to reuse a blob it has seen compressed differently).
KEEP_DIGESTS = "--preserve-digests"


def _assert_layout_intact(layout: Path) -> None:
    """Every blob of a layout hashes to its file name."""
    for path in (layout / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path


def test_copy_all_multiarch_round_trip_keeps_every_digest(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, multiarch_layout: Layout, repo: str, tmp_path: Path
) -> None:
    skopeo.run("copy", KEEP_DIGESTS, "--all", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "v1"))

    # What the registry now serves is the index, byte for byte, and every child manifest and blob.
    response = get_manifest(client, repo, "v1")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == OCI_INDEX
    assert response.headers["docker-content-digest"] == multiarch_layout.top_digest
    assert response.content == read_blob(multiarch_layout.path, multiarch_layout.top_digest)
    for image in multiarch_layout.images:
        child = get_manifest(client, repo, image.manifest_digest)
        assert child.status_code == 200, child.text
        assert child.headers["content-type"] == OCI_MANIFEST
        assert child.content == image.manifest
        for digest in [image.config_digest, *image.layer_digests]:
            assert assert_blob(client, repo, digest) == read_blob(multiarch_layout.path, digest)

    out = tmp_path / "out-layout"
    skopeo.run("copy", KEEP_DIGESTS, "--all", NO_TLS_SRC, docker_ref(server, repo, "v1"), f"oci:{out}:v1")
    entry = index_entry(out, "v1")
    assert entry["mediaType"] == OCI_INDEX
    assert entry["digest"] == multiarch_layout.top_digest
    assert blob_digests(out) == multiarch_layout.blob_digests()
    _assert_layout_intact(out)

    # skopeo streamed every blob: POST opens a session, PATCH sends the bytes, PUT closes it with the digest.
    uploads = [r for r in access_log(server, repo) if "/blobs/uploads/" in r.path]
    assert all(r.status < 400 for r in uploads), uploads
    session_ids = {r.path.rsplit("/", 1)[1] for r in uploads if r.method == "PUT"}
    patched_ids = {r.path.rsplit("/", 1)[1] for r in uploads if r.method == "PATCH"}
    blobs = {d for image in multiarch_layout.images for d in (image.config_digest, *image.layer_digests)}
    assert len(session_ids) == len(blobs)
    assert session_ids <= patched_ids


def test_copy_all_between_repositories_keeps_the_index_digest(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, multiarch_layout: Layout, repo: str
) -> None:
    skopeo.run("copy", KEEP_DIGESTS, "--all", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "src"))
    target = f"{repo}-copy"
    # Registry to registry: blobs may be cross-mounted from the source repository.
    skopeo.run(
        "copy",
        KEEP_DIGESTS,
        "--all",
        NO_TLS_SRC,
        NO_TLS_DEST,
        docker_ref(server, repo, "src"),
        docker_ref(server, target, "dst"),
    )
    response = get_manifest(client, target, "dst")
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == multiarch_layout.top_digest
    for image in multiarch_layout.images:
        for digest in [image.config_digest, *image.layer_digests]:
            assert_blob(client, target, digest)


def test_inspect_reports_index_and_per_platform_images(
    skopeo: Tool, server: DockyardServer, multiarch_layout: Layout, repo: str, seed: str
) -> None:
    ref = docker_ref(server, repo, "v1")
    skopeo.run("copy", KEEP_DIGESTS, "--all", NO_TLS_DEST, multiarch_layout.ref, ref)

    raw = skopeo.run("inspect", "--raw", NO_TLS, ref).stdout.encode()
    assert sha256(raw) == multiarch_layout.top_digest
    index = json.loads(raw)
    assert index["mediaType"] == OCI_INDEX
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}

    amd64, arm64 = multiarch_layout.images
    for image, args in (
        (amd64, ["--override-arch", "amd64"]),
        (arm64, ["--override-arch", "arm64", "--override-variant", "v8"]),
    ):
        info = skopeo.json("--override-os", "linux", *args, "inspect", NO_TLS, ref)
        assert info["Digest"] == multiarch_layout.top_digest
        assert info["Architecture"] == image.platform.architecture
        assert info["Os"] == "linux"
        assert info["Layers"] == image.layer_digests
        assert info["Labels"] == {"dockyard.test": f"{seed}-{image.platform.architecture}"}
        assert info["RepoTags"] == ["v1"]

    # A child by digest: its raw manifest and its config.
    child_ref = docker_ref(server, repo, arm64.manifest_digest)
    assert skopeo.run("inspect", "--raw", NO_TLS, child_ref).stdout.encode() == arm64.manifest
    config = skopeo.run("inspect", "--config", "--raw", NO_TLS, child_ref).stdout.encode()
    assert sha256(config) == arm64.config_digest
    assert json.loads(config)["rootfs"]["diff_ids"] == arm64.diff_ids


def test_list_tags_shows_every_pushed_tag(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, image_layout: Layout, repo: str
) -> None:
    tags = ["v1.0.0", "latest", "stable", "v1"]
    for tag in tags:
        skopeo.run("copy", KEEP_DIGESTS, NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, tag))
    listed = skopeo.json("list-tags", NO_TLS, f"docker://{server.host}/{repo}")
    assert listed["Repository"] == f"{server.host}/{repo}"
    assert sorted(listed["Tags"]) == sorted(tags)
    assert sorted(client.get(f"/v2/{repo}/tags/list").json()["tags"]) == sorted(tags)
    # All four tags name the same manifest.
    digests = {get_manifest(client, repo, tag).headers["docker-content-digest"] for tag in tags}
    assert digests == {image_layout.top_digest}


def test_delete_removes_manifest_and_its_tags(
    skopeo: Tool,
    server: DockyardServer,
    client: httpx.Client,
    image_layout: Layout,
    multiarch_layout: Layout,
    repo: str,
) -> None:
    skopeo.run("copy", KEEP_DIGESTS, NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, "doomed"))
    skopeo.run("copy", KEEP_DIGESTS, "--all", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "keep"))
    assert get_manifest(client, repo, "doomed").status_code == 200

    # skopeo resolves the tag and deletes the manifest by digest.
    skopeo.run("delete", NO_TLS, docker_ref(server, repo, "doomed"))

    for reference in ("doomed", image_layout.top_digest):
        gone = get_manifest(client, repo, reference)
        assert gone.status_code == 404, gone.text
        assert [e["code"] for e in gone.json()["errors"]] == ["MANIFEST_UNKNOWN"]
    failed = skopeo.run("inspect", "--raw", NO_TLS, docker_ref(server, repo, "doomed"), check=False)
    assert failed.returncode != 0
    assert "manifest unknown" in failed.stderr.lower()
    assert skopeo.json("list-tags", NO_TLS, f"docker://{server.host}/{repo}")["Tags"] == ["keep"]
    assert get_manifest(client, repo, "keep").headers["docker-content-digest"] == multiarch_layout.top_digest

    # Deleting the index by its tag leaves the repository with no tags.
    skopeo.run("delete", NO_TLS, docker_ref(server, repo, "keep"))
    assert get_manifest(client, repo, multiarch_layout.top_digest).status_code == 404
    assert skopeo.json("list-tags", NO_TLS, f"docker://{server.host}/{repo}")["Tags"] in ([], None)


def test_v2s2_round_trip(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, image_layout: Layout, repo: str, tmp_path: Path
) -> None:
    skopeo.run("copy", "--format", "v2s2", NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, "v2"))
    (image,) = image_layout.images

    response = get_manifest(client, repo, "v2")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DOCKER_MANIFEST
    digest = response.headers["docker-content-digest"]
    assert digest == sha256(response.content)
    manifest = json.loads(response.content)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["mediaType"] == "application/vnd.docker.container.image.v1+json"
    # Converting the manifest leaves the blobs alone: same config and layers, Docker media types.
    assert manifest["config"]["digest"] == image.config_digest
    assert [layer["digest"] for layer in manifest["layers"]] == image.layer_digests
    assert {layer["mediaType"] for layer in manifest["layers"]} == {"application/vnd.docker.image.rootfs.diff.tar.gzip"}
    for layer in manifest["layers"]:
        assert_blob(client, repo, layer["digest"], layer["size"])

    assert skopeo.run("inspect", "--raw", NO_TLS, docker_ref(server, repo, "v2")).stdout.encode() == response.content

    # Out to a dir: (no conversion) and into another repository: the manifest digest does not change.
    out = tmp_path / "v2s2-dir"
    skopeo.run("copy", KEEP_DIGESTS, NO_TLS_SRC, docker_ref(server, repo, "v2"), f"dir:{out}")
    assert sha256((out / "manifest.json").read_bytes()) == digest
    skopeo.run(
        "copy",
        KEEP_DIGESTS,
        NO_TLS_SRC,
        NO_TLS_DEST,
        docker_ref(server, repo, "v2"),
        docker_ref(server, f"{repo}-b", "v2"),
    )
    again = get_manifest(client, f"{repo}-b", "v2")
    assert again.headers["docker-content-digest"] == digest
    assert again.headers["content-type"] == DOCKER_MANIFEST


def test_v2s2_manifest_list_round_trip(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, multiarch_layout: Layout, repo: str
) -> None:
    skopeo.run("copy", "--all", "--format", "v2s2", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "list"))

    response = get_manifest(client, repo, "list")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DOCKER_LIST
    list_digest = response.headers["docker-content-digest"]
    assert list_digest == sha256(response.content)
    manifest_list = json.loads(response.content)
    assert manifest_list["mediaType"] == DOCKER_LIST
    platforms = {(m["platform"]["architecture"], m["platform"].get("variant")) for m in manifest_list["manifests"]}
    assert platforms == {("amd64", None), ("arm64", "v8")}
    by_arch = {image.platform.architecture: image for image in multiarch_layout.images}
    for entry in manifest_list["manifests"]:
        assert entry["mediaType"] == DOCKER_MANIFEST
        child = get_manifest(client, repo, entry["digest"])
        assert child.headers["content-type"] == DOCKER_MANIFEST
        assert len(child.content) == entry["size"]
        expected = by_arch[entry["platform"]["architecture"]]
        assert json.loads(child.content)["config"]["digest"] == expected.config_digest

    # A Docker-only client asking for a manifest list gets exactly the bytes that were pushed.
    docker_only = client.get(f"/v2/{repo}/manifests/list", headers={"Accept": DOCKER_LIST})
    assert docker_only.content == response.content

    skopeo.run(
        "copy",
        KEEP_DIGESTS,
        "--all",
        NO_TLS_SRC,
        NO_TLS_DEST,
        docker_ref(server, repo, "list"),
        docker_ref(server, f"{repo}-b", "list"),
    )
    assert get_manifest(client, f"{repo}-b", "list").headers["docker-content-digest"] == list_digest


def test_zstd_layers_round_trip(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, image_layout: Layout, repo: str, tmp_path: Path
) -> None:
    skopeo.run("copy", "--dest-compress-format", "zstd", NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, "z"))
    response = get_manifest(client, repo, "z")
    assert response.status_code == 200, response.text
    manifest = json.loads(response.content)
    assert manifest["config"]["digest"] == image_layout.images[0].config_digest
    assert [layer["mediaType"] for layer in manifest["layers"]] == ["application/vnd.oci.image.layer.v1.tar+zstd"] * 2
    for layer in manifest["layers"]:
        assert assert_blob(client, repo, layer["digest"], layer["size"]).startswith(b"\x28\xb5\x2f\xfd")

    out = tmp_path / "zstd-out"
    skopeo.run("copy", KEEP_DIGESTS, NO_TLS_SRC, docker_ref(server, repo, "z"), f"oci:{out}:z")
    assert index_entry(out, "z")["digest"] == response.headers["docker-content-digest"]
    _assert_layout_intact(out)


def test_push_to_server_advertising_chunk_min_length(
    skopeo: Tool, make_server: Callable[..., DockyardServer], multiarch_layout: Layout, repo: str, tmp_path: Path
) -> None:
    """A server that sends OCI-Chunk-Min-Length (larger than most of these blobs) still takes skopeo's streamed
    single-PATCH uploads, small and large."""
    srv = make_server({"DOCKYARD_CHUNK_MIN_LENGTH": str(1024 * 1024)})
    started = httpx.post(f"{srv.url}/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202
    assert started.headers["oci-chunk-min-length"] == str(1024 * 1024)
    skopeo.run("copy", "--all", KEEP_DIGESTS, NO_TLS_DEST, multiarch_layout.ref, docker_ref(srv, repo, "v1"))
    out = tmp_path / "chunked-out"
    skopeo.run("copy", "--all", KEEP_DIGESTS, NO_TLS_SRC, docker_ref(srv, repo, "v1"), f"oci:{out}:v1")
    assert index_entry(out, "v1")["digest"] == multiarch_layout.top_digest
    assert blob_digests(out) == multiarch_layout.blob_digests()
    patches = [r for r in access_log(srv, repo) if r.method == "PATCH"]
    assert patches
    assert all(r.status == 202 for r in patches)
