"""podman against Dockyard: load an image from an OCI layout, push it (OCI and Docker schema 2), remove it,
pull it back with the same image ID; pull each platform of a multi-arch index; search the catalog."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import Tool, assert_blob, docker_ref, get_manifest
from tests.support.images import Layout
from tests.support.oci import DOCKER_MANIFEST, OCI_MANIFEST, sha256
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients

NO_TLS = "--tls-verify=false"


def _inspect(podman: Tool, ref: str) -> dict[str, Any]:
    (info,) = podman.json("image", "inspect", ref)
    assert isinstance(info, dict)
    return info


def _exists(podman: Tool, ref: str) -> bool:
    return podman.run("image", "exists", ref, check=False).returncode == 0


@pytest.mark.parametrize(("fmt", "media_type"), [("oci", OCI_MANIFEST), ("v2s2", DOCKER_MANIFEST)], ids=["oci", "v2s2"])
def test_push_remove_pull_keeps_image_id(
    podman: Tool,
    server: DockyardServer,
    client: httpx.Client,
    multiarch_layout: Layout,
    repo: str,
    tmp_path: Path,
    seed: str,
    fmt: str,
    media_type: str,
) -> None:
    amd64 = next(i for i in multiarch_layout.images if i.platform.architecture == "amd64")
    image_id = amd64.config_digest.removeprefix("sha256:")
    # From the layout's index podman picks the amd64 image; the image ID is its config digest.
    assert podman.out("pull", "-q", "--platform", "linux/amd64", multiarch_layout.ref) == image_id

    name = f"{server.host}/{repo}:{fmt}"
    podman.run("tag", image_id, name)
    digest_file = tmp_path / "pushed-digest"
    podman.run("push", NO_TLS, "--format", fmt, "--digestfile", str(digest_file), name)
    pushed = digest_file.read_text().strip()

    response = get_manifest(client, repo, fmt)
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == pushed == sha256(response.content)
    assert response.headers["content-type"] == media_type
    manifest = json.loads(response.content)
    assert manifest["config"]["digest"] == amd64.config_digest
    assert_blob(client, repo, amd64.config_digest)
    for layer in manifest["layers"]:
        assert_blob(client, repo, layer["digest"], layer["size"])

    podman.run("rmi", "-f", image_id)
    assert not _exists(podman, name)
    assert not _exists(podman, image_id)

    assert podman.out("pull", "-q", NO_TLS, name) == image_id
    info = _inspect(podman, name)
    assert info["Id"] == image_id
    assert info["Digest"] == pushed
    assert f"{server.host}/{repo}@{pushed}" in info["RepoDigests"]
    assert info["Architecture"] == "amd64"
    assert info["Labels"] == {"dockyard.test": f"{seed}-amd64"}


def test_pull_each_platform_of_a_multiarch_index(
    podman: Tool, skopeo: Tool, server: DockyardServer, multiarch_layout: Layout, repo: str
) -> None:
    skopeo.run(
        "copy",
        "--all",
        "--preserve-digests",
        "--dest-tls-verify=false",
        multiarch_layout.ref,
        docker_ref(server, repo, "multi"),
    )
    name = f"{server.host}/{repo}:multi"
    for image in multiarch_layout.images:
        platform = f"linux/{image.platform.architecture}"
        if image.platform.variant:
            platform += f"/{image.platform.variant}"
        image_id = podman.out("pull", "-q", NO_TLS, "--platform", platform, name)
        assert image_id == image.config_digest.removeprefix("sha256:")
        info = _inspect(podman, image_id)
        assert info["Architecture"] == image.platform.architecture
        # podman records both the index digest and the platform's manifest digest.
        repo_digests = info["RepoDigests"]
        assert isinstance(repo_digests, list)
        assert f"{server.host}/{repo}@{multiarch_layout.top_digest}" in repo_digests
        assert f"{server.host}/{repo}@{image.manifest_digest}" in repo_digests


def test_search_lists_repositories_and_tags(
    podman: Tool, make_server: Callable[..., DockyardServer], image_layout: Layout
) -> None:
    srv = make_server()  # a catalog of its own, so the search results are known exactly
    image_id = podman.out("pull", "-q", image_layout.ref)
    pushed = {"library/alpha": ["1.0", "latest"], "team/beta": ["v2"]}
    for name, tags in pushed.items():
        for tag in tags:
            podman.run("push", NO_TLS, image_id, f"docker://{srv.host}/{name}:{tag}")
    for name, tags in pushed.items():
        (found,) = podman.json("search", NO_TLS, "--list-tags", "--format", "json", f"{srv.host}/{name}")
        assert found["Name"] == f"{srv.host}/{name}"
        assert sorted(found["Tags"]) == tags
    # Without --list-tags, podman reads /v2/_catalog and keeps the names containing the term.
    hits = podman.json("search", NO_TLS, "--format", "json", f"{srv.host}/a")
    assert sorted(hit["Name"] for hit in hits) == [f"{srv.host}/library/alpha", f"{srv.host}/team/beta"]
    hits = podman.json("search", NO_TLS, "--format", "json", f"{srv.host}/beta")
    assert [hit["Name"] for hit in hits] == [f"{srv.host}/team/beta"]
