"""The registry gate: it forwards a client's requests to Dockyard with the build's bearer token, and only for a
client that presents the gate's own random credentials."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from dockyard.builds.registry_gate import RegistryGate
from tests.builds.executor.conftest import BASE_REPO, BASE_TAG, mint_token
from tests.support.server import DockyardServer

pytestmark = [pytest.mark.embedded_only, pytest.mark.usefixtures("base_digest")]


def test_gate_forwards_only_for_its_own_client(registry: DockyardServer, base_digest: str) -> None:
    token = mint_token(registry, f"repository:{BASE_REPO}:pull")
    path = f"/v2/{BASE_REPO}/manifests/{BASE_TAG}"
    accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}

    async def main() -> None:
        async with (
            RegistryGate(registry.url, token, tls_verify=False) as gate,
            httpx.AsyncClient(timeout=30) as client,
        ):
            url = f"http://{gate.host}{path}"
            stranger = await client.get(url, headers=accept)
            assert stranger.status_code == 401
            assert stranger.headers["www-authenticate"].startswith("Basic ")
            own = {"Authorization": f"Basic {gate.auth}", **accept}
            assert (await client.get(f"http://{gate.host}/v2/", headers=own)).status_code == 200
            manifest = await client.get(url, headers=own)
            assert manifest.status_code == 200, manifest.text
            assert manifest.headers["docker-content-digest"] == base_digest
            # A wrong secret is a stranger too.
            wrong = await client.get(url, headers={**accept, "Authorization": "Basic Z2F0ZTp3cm9uZw=="})
            assert wrong.status_code == 401

    asyncio.run(main())
    # The registry itself still wants a token: the gate added it.
    assert httpx.get(f"{registry.url}{path}", headers=accept, timeout=10).status_code == 401
