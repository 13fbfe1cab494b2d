"""TagService over real pushed content: the tag object and its images for a single image (config read from
storage, layer instructions from history), for a two-platform index (platforms from the index, sizes from the
children), garbage configs, listing order and pages, bounded concurrent config reads, and deleting a tag."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from dockyard.authz.principal import ANONYMOUS
from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, Invalid, NotFound
from dockyard.registry.blobs import BlobService
from dockyard.repos.images import ImageLayer, ImageResolver
from dockyard.repos.tags import TagService
from dockyard.storage.base import BlobStore
from tests.support.hub_services import OCI_INDEX, OCI_MANIFEST, HubEnv, Pushed, canonical, hub_env, sha256

P1 = PageRequest(1, 100)

HISTORY: list[dict[str, Any]] = [
    {"created_by": "/bin/sh -c #(nop) ADD file:0123abcd in / "},
    {"created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
    {"created_by": "RUN /bin/sh -c apk add curl # buildkit"},
]


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path) as e:
        yield e


async def test_single_image_tag(env: HubEnv) -> None:
    owner = await env.user()
    repo = f"{owner.name}/app"
    image = await env.push_image(repo, "v1", arch="arm", variant="v7", history=HISTORY, layers=2, actor=owner.name)
    tag = await env.tags.get_tag(owner, owner.name, "app", "v1")
    assert (tag.name, tag.digest, tag.media_type, tag.content_type) == ("v1", image.digest, OCI_MANIFEST, "image")
    assert (tag.v2, tag.status, tag.tag_status) == (True, "active", "active")
    assert (tag.creator, tag.last_updater, tag.last_updater_username) == (
        owner.account_id,
        owner.account_id,
        owner.name,
    )
    assert tag.tag_last_pushed == tag.last_updated
    assert tag.tag_last_pulled is None
    assert tag.full_size == image.size
    assert tag.id == (await env.tags.get_tag(owner, owner.name, "app", "v1")).id  # stable
    (only,) = tag.images
    assert (only.architecture, only.os, only.variant, only.digest) == ("arm", "linux", "v7", image.digest)
    assert (only.size, only.status, only.os_version, only.features, only.os_features) == (
        image.size,
        "active",
        None,
        "",
        "",
    )
    first, second = (sha256(layer) for layer in image.layers)
    assert only.layers == (
        ImageLayer(first, len(image.layers[0]), "ADD file:0123abcd in /"),
        ImageLayer(None, 0, 'CMD ["sh"]'),
        ImageLayer(second, len(image.layers[1]), "RUN /bin/sh -c apk add curl"),
    )
    assert only.last_pushed is not None

    with pytest.raises(NotFound) as missing:
        await env.tags.get_tag(owner, owner.name, "app", "v2")
    assert missing.value.subject == "tag"
    with pytest.raises(NotFound):
        await env.tags.get_tag(owner, owner.name, "app", "bad:tag")
    with pytest.raises(NotFound) as hidden:
        await env.tags.get_tag(ANONYMOUS, owner.name, "app", "v1")
    assert hidden.value.subject == "repository"


async def test_two_platform_index(env: HubEnv) -> None:
    owner = await env.user()
    repo = f"{owner.name}/multi"
    # The children's configs are not read for an index: the platforms come from the index's descriptors.
    amd = await env.push_image(repo, None, config=b"garbage, never read", layers=1)
    arm = await env.push_image(repo, None, arch="arm64", layers=3)
    attestation = await env.push_image(repo, None, config_type="application/vnd.in-toto+json")
    platforms: list[tuple[Pushed, dict[str, Any] | None]] = [
        (arm, {"os": "linux", "architecture": "arm64", "variant": "v8", "os.features": ["a", "b"]}),
        (amd, {"os": "linux", "architecture": "amd64", "os.version": "10.0.17763.1"}),
    ]
    index = await env.push_index(repo, "latest", platforms)
    # An index with a BuildKit attestation: the attestation is no platform image.
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": arm.digest, "size": len(arm.body), "platform": {"os": "linux"}},
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": attestation.digest,
                    "size": len(attestation.body),
                    "platform": {"os": "unknown", "architecture": "unknown"},
                    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
                },
            ],
        }
    )
    await env.registry.manifests.put(repo, "attested", body, OCI_INDEX)

    tag = await env.tags.get_tag(owner, owner.name, "multi", "latest")
    assert (tag.digest, tag.media_type, tag.content_type) == (index.digest, OCI_INDEX, "image")
    assert [i.digest for i in tag.images] == [arm.digest, amd.digest]
    arm_image, amd_image = tag.images
    assert (arm_image.os, arm_image.architecture, arm_image.variant, arm_image.os_features) == (
        "linux",
        "arm64",
        "v8",
        "a,b",
    )
    assert (amd_image.os, amd_image.architecture, amd_image.os_version) == ("linux", "amd64", "10.0.17763.1")
    assert (arm_image.size, amd_image.size) == (arm.size, amd.size)
    assert [layer.digest for layer in arm_image.layers] == [sha256(layer) for layer in arm.layers]
    assert [layer.size for layer in arm_image.layers] == [len(layer) for layer in arm.layers]
    assert tag.full_size == amd.size  # Hub shows the amd64 image's size

    attested = await env.tags.get_tag(owner, owner.name, "multi", "attested")
    assert [(i.digest, i.os, i.architecture) for i in attested.images] == [(arm.digest, "linux", "unknown")]
    assert attested.full_size == arm.size


@pytest.mark.parametrize(
    "config",
    [
        b"not json at all",
        b"[]",
        b'{"architecture": 7, "os": ["linux"], "history": "nope"}',
        b'{"history": [1, null, {"created_by": 5}, {"empty_layer": true}]}',
        b"[" * 100_000,
        b'{"architecture": "amd64", "padding": "' + b"x" * (1024 * 1024) + b'"}',  # over 1 MiB: never read
    ],
)
async def test_garbage_configs_give_unknown(env: HubEnv, config: bytes) -> None:
    owner = await env.user()
    image = await env.push_image(f"{owner.name}/odd", "v1", config=config)
    (only,) = (await env.tags.get_tag(owner, owner.name, "odd", "v1")).images
    assert (only.architecture, only.os, only.variant) == ("unknown", "unknown", None)
    assert sha256(image.layers[0]) in [layer.digest for layer in only.layers]
    assert only.size == image.size


async def test_missing_config_blob_and_artifacts(env: HubEnv) -> None:
    owner = await env.user()
    image = await env.push_image(f"{owner.name}/lost", "v1")
    await env.ctx.store.delete(sha256(image.config))
    (only,) = (await env.tags.get_tag(owner, owner.name, "lost", "v1")).images
    assert only.architecture == "unknown"
    chart = await env.push_image(f"{owner.name}/lost", "chart", config_type="application/vnd.cncf.helm.config.v1+json")
    tag = await env.tags.get_tag(owner, owner.name, "lost", "chart")
    assert (tag.content_type, tag.images[0].architecture, tag.full_size) == ("artifact", "unknown", chart.size)


class CountingStore:
    """A BlobStore proxy that records how many ``read`` streams run at once."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        self.active = 0
        self.peak = 0
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def read(self, digest: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        self.active += 1
        self.reads += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(0.01)
            async for chunk in self.store.read(digest, start, end):
                yield chunk
        finally:
            self.active -= 1


async def test_list_tags_order_pages_and_bounded_config_reads(env: HubEnv) -> None:
    owner = await env.user()
    repo = f"{owner.name}/many"
    names = [f"t{i:02d}" for i in range(30)]
    for name in names:  # pushed in order: the last is the newest
        await env.push_image(repo, name)
    await env.set_private(repo, False)
    counting = CountingStore(env.ctx.store)
    service = TagService(env.ctx, ImageResolver(BlobService(replace(env.ctx, store=counting)), concurrency=4))

    page = await service.list_tags(ANONYMOUS, owner.name, "many", P1)
    assert [t.name for t in page.items] == names[::-1]  # newest first by default
    assert page.count == 30
    assert all(t.images[0].architecture == "amd64" for t in page.items)
    assert counting.reads == 30
    assert 1 < counting.peak <= 4
    # Configs are immutable: a second listing reads none.
    await service.list_tags(ANONYMOUS, owner.name, "many", P1)
    assert counting.reads == 30

    by_name = await service.list_tags(ANONYMOUS, owner.name, "many", PageRequest(2, 7), ordering="name")
    assert [t.name for t in by_name.items] == names[7:14]
    assert (by_name.count, by_name.has_next) == (30, True)
    desc = await service.list_tags(ANONYMOUS, owner.name, "many", PageRequest(1, 3), ordering="-name")
    assert [t.name for t in desc.items] == ["t29", "t28", "t27"]
    oldest = await service.list_tags(ANONYMOUS, owner.name, "many", PageRequest(1, 2), ordering="last_updated")
    assert [t.name for t in oldest.items] == ["t00", "t01"]
    filtered = await service.list_tags(ANONYMOUS, owner.name, "many", P1, name_filter="T1", ordering="name")
    assert ([t.name for t in filtered.items], filtered.count) == ([f"t1{i}" for i in range(10)], 10)
    assert (await service.list_tags(ANONYMOUS, owner.name, "many", P1, name_filter="_")).count == 0
    with pytest.raises(Invalid):
        await service.list_tags(ANONYMOUS, owner.name, "many", P1, ordering="size")
    await env.set_private(repo, True)
    with pytest.raises(NotFound):
        await service.list_tags(ANONYMOUS, owner.name, "many", P1)


async def test_delete_tag(env: HubEnv) -> None:
    owner = await env.user()
    writer = await env.user()
    repo = f"{owner.name}/app"
    image = await env.push_image(repo, "v1")
    await env.registry.manifests.put(repo, "v2", image.body, OCI_MANIFEST)
    await env.grant(repo, writer, "write")

    with pytest.raises(Denied):
        await env.tags.delete_tag(writer, owner.name, "app", "v1")
    with pytest.raises(NotFound):
        await env.tags.delete_tag(ANONYMOUS, owner.name, "app", "v1")
    await env.tags.delete_tag(owner, owner.name, "app", "v1", source_ip="10.2.2.2")
    with pytest.raises(NotFound):
        await env.tags.get_tag(owner, owner.name, "app", "v1")
    # Untagging keeps the manifest (still tagged v2, still pullable by digest).
    assert (await env.tags.get_tag(owner, owner.name, "app", "v2")).digest == image.digest
    assert (await env.registry.manifests.get(repo, image.digest)).digest == image.digest
    with pytest.raises(NotFound) as missing:
        await env.tags.delete_tag(owner, owner.name, "app", "v1")
    assert missing.value.subject == "tag"
    with pytest.raises(NotFound):
        await env.tags.delete_tag(owner, owner.name, "app", image.digest)  # a digest is no tag
    page = await env.audit.list(owner, owner.name, action="repo.tag.delete", page=P1)
    assert [(e.name, e.actor, e.data["digest"]) for e in page.items] == [(f"{repo}:v1", owner.name, image.digest)]


async def test_oversized_manifest_is_listed_without_images(env: HubEnv) -> None:
    owner = await env.user()
    repo = f"{owner.name}/big"
    image = await env.push_image(repo, "small")
    doc = json.loads(image.body)
    doc["annotations"] = {"padding": "x" * (600 * 1024)}
    body = canonical(doc)
    await env.registry.manifests.put(repo, "big", body, OCI_MANIFEST)
    tag = await env.tags.get_tag(owner, owner.name, "big", "big")
    assert (tag.digest, tag.images, tag.full_size) == (sha256(body), (), 0)
