"""Pushing a built image from a local OCI image layout to Dockyard's ``/v2`` with the build's bearer token.

The buildah executor writes the image to an OCI layout (``buildah push … oci:<dir>``: the layers compressed once,
the manifest's bytes known exactly) and this module uploads it: each blob the repository lacks is mounted from a
base image's repository when it is there (``POST …/blobs/uploads/?mount=&from=``) or uploaded whole, then the
manifest is PUT under every tag. Nothing is read back through ``/v2``: a repository under a trust or vulnerability
policy ``enforce`` refuses to hand out an image before it is signed (the build's ``signing`` stage signs it), and
the executor needs no such read — it knows the digest, media type and size from the bytes it pushed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from urllib.parse import urlencode

import httpx

from dockyard.builds.executor import BuildFailed

CHUNK = 1024 * 1024


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in ("sha256", "sha512") or not encoded.isalnum():
        raise BuildFailed(f"the image layout names a bad digest {digest!r}", "pushing")
    return layout / "blobs" / algorithm / encoded


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as source:
        while piece := source.read(CHUNK):
            yield piece


def _with_digest(location: str, digest: str) -> str:
    return f"{location}{'&' if '?' in location else '?'}{urlencode({'digest': digest})}"


async def _ensure_blob(
    client: httpx.AsyncClient, layout: Path, repository: str, digest: str, mount_from: Sequence[str]
) -> None:
    if (await client.head(f"/v2/{repository}/blobs/{digest}")).status_code == 200:
        return
    location = ""
    for source in mount_from:
        mounted = await client.post(f"/v2/{repository}/blobs/uploads/", params={"mount": digest, "from": source})
        if mounted.status_code == 201:
            return
        if mounted.status_code == 202:
            location = mounted.headers.get("location", "")
            break
    if not location:
        started = await client.post(f"/v2/{repository}/blobs/uploads/")
        if started.status_code != 202:
            raise BuildFailed(f"blob upload refused ({started.status_code})", "pushing")
        location = started.headers.get("location", "")
    path = _blob_path(layout, digest)
    put = await client.put(
        _with_digest(location, digest),
        content=_chunks(path),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)},
    )
    if put.status_code != 201:
        raise BuildFailed(f"blob {digest} refused ({put.status_code})", "pushing")


async def push_layout(
    client: httpx.AsyncClient, layout: Path, repository: str, tags: Sequence[str], mount_from: Sequence[str] = ()
) -> tuple[str, str, int]:
    """Push the one image of OCI layout ``layout`` to ``repository`` under ``tags``, mounting blobs from the
    repositories ``mount_from`` where it can. Returns the manifest's (digest, media type, size). Raises
    :class:`BuildFailed` (stage ``pushing``) when the registry refuses a step."""
    index = json.loads((layout / "index.json").read_text())
    manifests = index.get("manifests") or []
    if len(manifests) != 1:
        raise BuildFailed(f"the image layout holds {len(manifests)} images, not one", "pushing")
    digest, media_type = str(manifests[0]["digest"]), str(manifests[0]["mediaType"])
    body = _blob_path(layout, digest).read_bytes()
    manifest = json.loads(body)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        await _ensure_blob(client, layout, repository, str(descriptor["digest"]), mount_from)
    for tag in tags:
        put = await client.put(f"/v2/{repository}/manifests/{tag}", content=body, headers={"Content-Type": media_type})
        if put.status_code != 201:
            reason = f"pushing the manifest as {tag} was refused ({put.status_code}): {put.text[:200]}"
            raise BuildFailed(reason, "pushing")
        if put.headers.get("docker-content-digest", digest) != digest:
            raise BuildFailed(f"the registry stored the manifest as {put.headers['docker-content-digest']}", "pushing")
    return digest, media_type, len(body)
