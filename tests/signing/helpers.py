"""What the live-server signing tests share: trusting keys and setting trust policies through the Hub API (in the
``admin`` namespace), pulling a manifest as a client does, reading a tag's signatures, and waiting for a change
to reach every worker (policies and keys are cached for up to 2 seconds per process)."""

from __future__ import annotations

from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.signing.keys import PrivateKey
from tests.support.oci import OCI_INDEX, OCI_MANIFEST

VERIFIED = "dockyard-signature-verified"


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def pem(key: PrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def policy(client: httpx.Client, mode: str, repo: str | None = None, exempt: list[str] | None = None) -> None:
    """The ``admin`` namespace's default policy, or ``repo``'s own."""
    path = "/api/v2/namespaces/admin/trust-policy"
    if repo is not None:
        path = f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/trust-policy"
    response = client.put(path, json={"mode": mode, "exempt": exempt or []})
    assert response.status_code == 200, response.text


def trust(client: httpx.Client, key: PrivateKey, name: str = "ci") -> str:
    """Register ``key``'s public half as trusted by ``admin``; its key id."""
    response = client.post("/api/v2/namespaces/admin/trusted-keys", json={"name": name, "public_key": pem(key)})
    assert response.status_code == 201, response.text
    return str(response.json()["key_id"])


def get(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})


def tag_signatures(client: httpx.Client, repo: str, tag: str) -> list[dict[str, Any]]:
    """The ``signatures`` of a tag's Hub API view."""
    response = client.get(f"/api/v2/namespaces/admin/repositories/{repo.split('/', 1)[1]}/tags/{tag}")
    assert response.status_code == 200, response.text
    signatures: list[dict[str, Any]] = response.json()["signatures"]
    return signatures
