"""Helpers that speak the distribution API with httpx: push blobs and manifests, build small images."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def unique_name(prefix: str = "test") -> str:
    return f"{prefix}/r{uuid.uuid4().hex[:12]}"


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def push_blob(client: httpx.Client, repo: str, data: bytes, digest: str | None = None) -> str:
    digest = digest or sha256(data)
    response = client.post(
        f"/v2/{repo}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


@dataclass
class PushedImage:
    manifest: bytes
    digest: str
    config: bytes
    layers: list[bytes]


def push_image(
    client: httpx.Client,
    repo: str,
    tag: str | None = "latest",
    *,
    seed: str | None = None,
    media_type: str = OCI_MANIFEST,
    extra: dict[str, Any] | None = None,
) -> PushedImage:
    """Push a config, one layer and a manifest; return what was pushed."""
    seed = seed or uuid.uuid4().hex
    config = canonical({"architecture": "amd64", "os": "linux", "seed": seed})
    layer = f"layer-{seed}".encode()
    push_blob(client, repo, config)
    push_blob(client, repo, layer)
    docker = media_type == DOCKER_MANIFEST
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor("application/vnd.docker.container.image.v1+json" if docker else OCI_CONFIG, config),
        "layers": [descriptor("application/vnd.docker.image.rootfs.diff.tar.gzip" if docker else OCI_LAYER, layer)],
        **(extra or {}),
    }
    body = canonical(doc)
    digest = sha256(body)
    response = client.put(f"/v2/{repo}/manifests/{tag or digest}", content=body, headers={"Content-Type": media_type})
    assert response.status_code == 201, response.text
    return PushedImage(body, digest, config, [layer])


def error_codes(response: httpx.Response) -> list[str]:
    return [e["code"] for e in response.json()["errors"]]
