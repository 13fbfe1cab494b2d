"""The SBOM referrer the inventory job attaches to every pushed image platform (``dockyard.inventory.referrers``),
on a real database of the test backend and a filesystem store: an SPDX 2.3 artifact whose subject is the image,
listed by the referrers query; attaching again adds nothing; a referrer made from an older inventory is replaced;
a namespace with a storage limit and a pull-through cache get none; the referrer itself is neither inventoried nor
scanned; a repository deleted meanwhile is not made again by it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, select

from dockyard.core import mediatypes as mt
from dockyard.errors import NotFound
from dockyard.events.bus import OutboxEvent
from dockyard.inventory.referrers import SBOM_ANNOTATION, SbomReferrers, push_referrer, referrer_manifest
from dockyard.inventory.tasks import inventory_service
from dockyard.models import Proxy, Repository
from dockyard.models.base import utcnow
from dockyard.registry.quotas import set_limits, usage
from dockyard.repos.access import new_image_pushed
from tests.support.hub_services import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, HubEnv, canonical, hub_env, sha256
from tests.support.layers import DEBIAN_12_OS_RELEASE, E, dpkg_status, layer

SPDX = "application/spdx+json"


BASE = layer(  # built once: gzip stamps the time, and the same image must have the same digest everywhere
    [
        E("etc/os-release", data=DEBIAN_12_OS_RELEASE),
        E("var/lib/dpkg/status", data=dpkg_status(("libc6", "2.36-9", "glibc"), ("bash", "5.2.15-2", None))),
    ]
)


CONFIG = canonical({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})


async def _image(env: HubEnv, repo: str) -> tuple[str, bytes]:
    pushed = await env.push_image(repo, "v1", config=CONFIG, layer_blobs=[BASE])
    return pushed.digest, pushed.body


async def test_the_sbom_is_attached_once_and_replaced_when_stale(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        repo = "acme/app"
        digest, body = await _image(env, repo)
        inventory = inventory_service(env.ctx)
        sboms = SbomReferrers(env.registry, inventory, "https://hub.example")

        await inventory.compute(repo, digest)
        attached = await sboms.attach(repo, digest)
        again = await sboms.attach(repo, digest)

        listed = await env.registry.listing.referrers(repo, digest, SPDX)
        assert attached is not None
        assert again == attached
        assert [d["digest"] for d in listed] == [attached]
        assert listed[0]["artifactType"] == SPDX
        assert listed[0]["annotations"][SBOM_ANNOTATION] == "inventory"
        manifest = json.loads((await env.registry.manifests.get(repo, attached)).content)
        assert manifest["subject"] == {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}
        assert manifest["layers"][0]["mediaType"] == SPDX
        layer_desc = manifest["layers"][0]
        content = await env.registry.blobs.read_small(layer_desc["digest"], layer_desc["size"])
        assert content is not None
        document = json.loads(content)
        assert document["spdxVersion"] == "SPDX-2.3"
        purls = sorted(ref["referenceLocator"] for p in document["packages"] for ref in p.get("externalRefs", []))
        assert any(p.startswith("pkg:deb/debian/libc6@2.36-9") for p in purls)
        assert any(p.startswith("pkg:deb/debian/bash@5.2.15-2") for p in purls)

        # the referrer is an artifact: no inventory, no scan
        assert await inventory.target(repo, attached) is None
        event = OutboxEvent(
            id=1,
            event_id="e",
            type="manifest.pushed",
            occurred_at=utcnow(),
            actor="dockyard-inventory",
            repository=repo,
            tag=None,
            digest=attached,
            media_type=mt.OCI_MANIFEST,
            payload={"artifactType": SPDX, "new": True},
        )
        assert new_image_pushed(event) is None

        # an SBOM of an older inventory (another document) is replaced, not kept beside the new one
        await env.registry.manifests.delete(repo, attached)
        stale_payload = b'{"spdxVersion":"SPDX-2.3","stale":true}'
        stale = referrer_manifest(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)},
            SPDX,
            SPDX,
            stale_payload,
            annotations={SBOM_ANNOTATION: "inventory"},
        )
        stale_digest = await push_referrer(env.registry, repo, stale, stale_payload, actor="test")
        assert await sboms.attach(repo, digest) == attached
        assert [d["digest"] for d in await env.registry.listing.referrers(repo, digest, SPDX)] == [attached]
        assert stale_digest != attached


async def test_each_repository_holding_the_image_gets_its_own(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        digest, _ = await _image(env, "acme/one")
        await _image(env, "acme/one")
        other, _ = await _image(env, "acme/two")
        inventory = inventory_service(env.ctx)
        sboms = SbomReferrers(env.registry, inventory, "https://hub.example")
        for repo, image in (("acme/one", digest), ("acme/two", other)):
            await inventory.compute(repo, image)
            assert await sboms.attach(repo, image) is not None
        assert digest == other  # the same image in two repositories: one inventory, a referrer in each
        assert len(await env.registry.listing.referrers("acme/one", digest, SPDX)) == 1
        assert len(await env.registry.listing.referrers("acme/two", digest, SPDX)) == 1


async def test_no_sbom_for_a_failed_inventory_or_an_unknown_image(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        repo = "acme/bad"
        blob = b"\x1f\x8b\x08\x00" + b"corrupt gzip" * 100
        config = canonical({"architecture": "amd64", "os": "linux"})
        await env.blob(repo, config)
        await env.blob(repo, blob)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": sha256(blob), "size": len(blob)}],
            }
        )
        await env.registry.manifests.put(repo, "bad", body, OCI_MANIFEST)
        inventory = inventory_service(env.ctx)
        sboms = SbomReferrers(env.registry, inventory, "https://hub.example")
        state = await inventory.compute(repo, sha256(body))
        assert state is not None
        assert state.state == "failed"
        assert await sboms.attach(repo, sha256(body)) is None
        assert await sboms.attach(repo, "sha256:" + "0" * 64) is None
        assert await env.registry.listing.referrers(repo, sha256(body), None) == []


async def test_none_in_a_namespace_with_a_storage_limit_or_a_pull_through_cache(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        inventory = inventory_service(env.ctx)
        sboms = SbomReferrers(env.registry, inventory, "https://hub.example")
        limited, _ = await _image(env, "quota/app")
        cached, _ = await _image(env, "mirror/app")
        async with env.db.write() as conn:
            await set_limits(conn, "quota", storage_limit=10**12)
            await conn.execute(insert(Proxy).values(namespace="mirror", upstream_url="https://upstream.example"))
        before = {ns: (await _used(env, ns)) for ns in ("quota", "mirror")}
        for repo, digest in (("quota/app", limited), ("mirror/app", cached)):
            state = await inventory.compute(repo, digest)
            assert state is not None
            assert state.state == "ready"
            assert await sboms.attach(repo, digest) is None
            assert await env.registry.listing.referrers(repo, digest, None) == []
        assert {ns: (await _used(env, ns)) for ns in ("quota", "mirror")} == before
        async with env.db.write() as conn:  # without the limit, it is attached (and counted like any artifact)
            await set_limits(conn, "quota", storage_limit=None)
        assert await sboms.attach("quota/app", limited) is not None
        assert await _used(env, "quota") > before["quota"]


async def _used(env: HubEnv, namespace: str) -> int:
    async with env.db.read() as conn:
        return (await usage(conn, namespace)).storage_bytes


async def test_what_the_server_attaches_never_brings_a_deleted_repository_back(tmp_path: Path) -> None:
    async with hub_env(tmp_path, open=True) as env:
        repo = "acme/gone"
        digest, body = await _image(env, repo)
        inventory = inventory_service(env.ctx)
        await inventory.compute(repo, digest)
        payload = b'{"spdxVersion": "SPDX-2.3"}'
        manifest = referrer_manifest(
            {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(body)}, SPDX, SPDX, payload
        )
        async with env.db.write() as conn:  # deleted (as by the Hub API) after the SBOM job looked it up
            await conn.execute(delete(Repository).where(Repository.name == repo))

        with pytest.raises(NotFound):
            await push_referrer(env.registry, repo, manifest, payload, actor="dockyard")
        with pytest.raises(NotFound):
            await env.registry.manifests.put(repo, "v2", body, OCI_MANIFEST, create=False)
        async with env.db.read() as conn:
            assert (await conn.execute(select(Repository.id).where(Repository.name == repo))).first() is None
        # A client's push still makes the repository, as ever.
        await env.registry.manifests.put(repo, "v1", body, OCI_MANIFEST, require_references=False)
        async with env.db.read() as conn:
            assert (await conn.execute(select(Repository.id).where(Repository.name == repo))).first() is not None
