"""Signing from the server: writes a cosign tag-scheme signature (``sha256-<hex>.sig``, a simple-signing payload
signed with the given key) next to an image, exactly as ``cosign sign --key`` with the tag scheme does, so that
cosign, skopeo, podman and Dockyard's own trust policy verify it. An existing signature manifest keeps its
layers: the new signature is appended (cosign does the same)."""

from __future__ import annotations

import base64
import json

from dockyard.core import mediatypes as mt
from dockyard.errors import NotFound
from dockyard.registry.services import Registry
from dockyard.signing import keys as signing_keys
from dockyard.signing.formats import ANNOTATION_SIGNATURE, SIMPLE_SIGNING, SIMPLE_SIGNING_TYPE, signature_tag

EMPTY_CONFIG = b"{}"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"


def simple_signing_payload(identity: str, digest: str) -> bytes:
    """The payload cosign signs: ``identity`` is the reference clients pull by (``host[:port]/repo``)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": SIMPLE_SIGNING_TYPE,
        },
        "optional": None,
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def _put_blob(registry: Registry, repository: str, data: bytes, actor: str) -> dict[str, object]:
    digest = await registry.uploads.put_bytes(repository, data, actor, create=False)
    return {"digest": str(digest), "size": len(data)}


async def sign_image(
    registry: Registry,
    repository: str,
    reference: str,
    private_key: signing_keys.PrivateKey,
    *,
    identity: str,
    actor: str = "dockyard",
) -> tuple[str, str]:
    """Sign the manifest ``reference`` (tag or digest) of ``repository``. Returns (signed digest, signature
    tag). Raises NotFound when there is no such manifest (or repository: it is never created here)."""
    manifest = await registry.manifests.get(repository, reference)
    payload = simple_signing_payload(identity, manifest.digest)
    signature = base64.b64encode(signing_keys.sign(private_key, payload)).decode()
    layer = {
        "mediaType": SIMPLE_SIGNING,
        **(await _put_blob(registry, repository, payload, actor)),
        "annotations": {ANNOTATION_SIGNATURE: signature},
    }
    config = {"mediaType": OCI_CONFIG, **(await _put_blob(registry, repository, EMPTY_CONFIG, actor))}
    tag = signature_tag(manifest.digest)
    layers: list[object] = []
    try:
        existing = await registry.manifests.get(repository, tag)
        previous = json.loads(existing.content)
        if isinstance(previous, dict) and isinstance(previous.get("layers"), list):
            layers = [
                entry
                for entry in previous["layers"]
                if isinstance(entry, dict) and entry.get("digest") != layer["digest"]
            ]
    except NotFound:
        pass
    document = {"schemaVersion": 2, "mediaType": mt.OCI_MANIFEST, "config": config, "layers": [*layers, layer]}
    body = json.dumps(document, separators=(",", ":")).encode()
    # Into the repository as it is: one deleted since the look-up above is not made again (NotFound).
    await registry.manifests.put(repository, tag, body, mt.OCI_MANIFEST, actor=actor, create=False)
    return manifest.digest, tag
