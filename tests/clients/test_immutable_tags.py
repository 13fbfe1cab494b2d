"""Immutable tags with a real client (issue 18, item 3): with Docker Hub's ``immutable_tags_settings`` on, skopeo
cannot move a protected tag to another image nor delete it — and prints the registry's message naming the rule —
while copying the identical image again succeeds; garbage collection keeps the protected image."""

from __future__ import annotations

import httpx
import pytest

from tests.clients.conftest import Tool, docker_ref, get_manifest
from tests.integration.test_gc import gc
from tests.support.images import Layout
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients

NO_TLS_DEST = "--dest-tls-verify=false"


def test_skopeo_cannot_overwrite_or_delete_an_immutable_tag(
    skopeo: Tool,
    server: DockyardServer,
    client: httpx.Client,
    image_layout: Layout,
    multiarch_layout: Layout,
    repo: str,
) -> None:
    skopeo.run("copy", "--preserve-digests", NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, "v1"))
    protected = get_manifest(client, repo, "v1").headers["docker-content-digest"]
    namespace, name = repo.split("/", 1)
    response = client.patch(
        f"/api/v2/namespaces/{namespace}/repositories/{name}/immutabletags",
        json={"immutable_tags": True, "immutable_tags_rules": ["v[0-9.]+"]},
    )
    assert response.status_code == 200, response.text

    # Another image under v1 (one of the index pushed under the mutable tag dev): refused, and skopeo prints why.
    skopeo.run(
        "copy", "--preserve-digests", "--all", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "dev")
    )
    other = next(image.manifest_digest for image in multiarch_layout.images if image.manifest_digest != protected)
    moved = skopeo.run(
        "copy",
        "--preserve-digests",
        "--src-tls-verify=false",
        NO_TLS_DEST,
        docker_ref(server, repo, other),
        docker_ref(server, repo, "v1"),
        check=False,
    )
    assert moved.returncode != 0
    # skopeo prints the registry's message (its quotes escaped): the tag, the refusal and the rule.
    message = moved.stderr.replace('\\"', '"')
    assert f'tag "v1" of {repo} is immutable and cannot be moved' in message, moved.stderr
    assert 'regex rule "v[0-9.]+"' in message, moved.stderr
    assert get_manifest(client, repo, "v1").headers["docker-content-digest"] == protected

    # The identical image again: accepted.
    skopeo.run("copy", "--preserve-digests", NO_TLS_DEST, image_layout.ref, docker_ref(server, repo, "v1"))

    # Deleting it (skopeo deletes by the digest the tag names): refused with the message.
    deleted = skopeo.run("delete", "--tls-verify=false", docker_ref(server, repo, "v1"), check=False)
    assert deleted.returncode != 0
    assert "immutable" in deleted.stderr, deleted.stderr
    assert get_manifest(client, repo, "v1").status_code == 200

    # A mutable tag still moves and goes; garbage collection then collects what it left and keeps v1.
    skopeo.run(
        "copy", "--preserve-digests", "--all", NO_TLS_DEST, multiarch_layout.ref, docker_ref(server, repo, "dev")
    )
    skopeo.run("delete", "--tls-verify=false", docker_ref(server, repo, "dev"))
    report, lines = gc(server, "--grace-seconds", "0")
    assert f"manifest {repo}@{other}" in lines, (report, lines)
    assert not any(protected in line for line in lines), lines
    kept = get_manifest(client, repo, "v1")
    assert kept.status_code == 200
    assert kept.headers["docker-content-digest"] == protected
    skopeo.run("inspect", "--tls-verify=false", docker_ref(server, repo, "v1"))
