"""``ProxyCache`` over a real registry (the run's database, a filesystem store) and an upstream answered by httpx's
mock transport, which records every request: a tag asked again with a ``HEAD`` once its TTL ran out (kept when
unchanged, moved when not, served stale when the upstream is down), manifests by digest, the upstream's referrers
stored with an image, an upstream manifest Dockyard cannot store, a blob ``HEAD`` without a size, a blob stored for
another repository linked into the proxy's, and an upstream that is down while a blob is wanted.

Nothing here waits for a clock: a TTL runs out by ageing the check's row, and the cache's background work (referrers,
the end of a fetch) is awaited before anything that depends on it is checked."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from dockyard.auth.secrets import SecretBox
from dockyard.core.digest import Digest
from dockyard.errors import NotFound, Unavailable
from dockyard.models import ProxyTagCheck
from dockyard.models.base import utcnow
from dockyard.proxy.cache import ProxyCache
from dockyard.proxy.flights import BlobFlights
from dockyard.proxy.manage import ProxyDirectory, ProxyService, Upstream
from dockyard.proxy.policy import TagChecks, is_fresh
from dockyard.proxy.upstream import UpstreamClient
from dockyard.registry.blobs import BlobInfo
from tests.support.hub_services import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    HubEnv,
    canonical,
    hub_env,
    sha256,
)

SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
TTL = 300
UPSTREAM = "https://upstream.test"


@dataclass
class FakeUpstream:
    """An upstream registry's ``/v2`` as the cache asks it, from dicts. ``down``: every request fails to connect;
    ``blob_sizes`` False: blob ``HEAD`` answers carry no ``Content-Length``."""

    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # "repository:reference" → (type, body)
    blobs: dict[str, bytes] = field(default_factory=dict)  # digest → content, in every repository
    referrers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # subject digest → descriptors
    down: bool = False
    blob_sizes: bool = True
    requests: list[str] = field(default_factory=list)  # "METHOD /path", in order

    def tag(self, repository: str, tag: str, body: bytes, media_type: str = OCI_MANIFEST) -> str:
        """Serve ``body`` as ``repository:tag`` (and by its digest); returns the digest."""
        digest = sha256(body)
        self.manifests[f"{repository}:{tag}"] = self.manifests[f"{repository}:{digest}"] = (media_type, body)
        return digest

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        repository, kind, reference = request.url.path.removeprefix("/v2/").rsplit("/", 2)
        if kind == "manifests" and f"{repository}:{reference}" in self.manifests:
            media_type, body = self.manifests[f"{repository}:{reference}"]
            headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(body)}
            if request.method == "HEAD":
                return httpx.Response(200, headers={**headers, "Content-Length": str(len(body))})
            return httpx.Response(200, headers=headers, content=body)
        if kind == "blobs" and reference in self.blobs:
            content = self.blobs[reference]
            if request.method == "HEAD":
                return httpx.Response(200, headers={"Content-Length": str(len(content))} if self.blob_sizes else {})
            # A stream, as a real transport gives: the cache reads blob bodies raw (``content=`` would be read).
            return httpx.Response(200, headers={"Content-Length": str(len(content))}, stream=httpx.ByteStream(content))
        if kind == "referrers" and reference in self.referrers:
            return httpx.Response(
                200, json={"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.referrers[reference]}
            )
        return httpx.Response(404)  # an unknown manifest or blob; no referrers API for other subjects


@dataclass
class Proxy:
    env: HubEnv
    cache: ProxyCache
    upstream: Upstream
    remote: FakeUpstream
    other: str  # a namespace that is no proxy

    @property
    def name(self) -> str:
        """The local repository that caches upstream repository ``app``."""
        return f"{self.upstream.namespace}/app"

    async def settled(self) -> None:
        """Wait for the background work of the cache: fetching the referrers of a stored manifest, and the end of a
        blob's fetch (releasing its lease), which goes on after the client got the last byte or the error."""
        while pending := self.cache._background | self.cache.flights._tasks:
            await asyncio.gather(*pending)

    async def age_tag_check(self, tag: str) -> None:
        """Make the tag's last confirmation older than the TTL (as if ``TTL`` seconds and one had passed)."""
        async with self.env.db.write() as conn:
            changed = await conn.execute(
                update(ProxyTagCheck)
                .where(ProxyTagCheck.repository == self.name, ProxyTagCheck.tag == tag)
                .values(checked_at=utcnow() - timedelta(seconds=TTL + 1))
            )
        assert changed.rowcount == 1


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[HubEnv]:
    """One database and store for the module (a PostgreSQL database costs a second to make); each test has a proxy
    namespace of its own."""
    async with hub_env(tmp_path_factory.mktemp("proxy-cache")) as made:
        yield made


@pytest.fixture
async def proxy(env: HubEnv) -> AsyncIterator[Proxy]:
    remote = FakeUpstream()
    client = UpstreamClient(5.0, transport=httpx.MockTransport(remote.handle))
    db, box = env.db, SecretBox("s" * 32)
    flights = BlobFlights(db, env.registry.uploads, client, lease_seconds=60)
    cache = ProxyCache(env.registry, ProxyDirectory(db, box), client, flights, TagChecks(db))
    admin = await env.user(admin=True)
    namespace = await env.org(owner=admin)  # a proxy namespace is an organization's
    await ProxyService(db, box).add(admin, namespace, UPSTREAM, username="bob", password="pw", tag_ttl_seconds=TTL)
    upstream = await cache.upstream_of(f"{namespace}/app")
    assert upstream is not None
    made = Proxy(env, cache, upstream, remote, admin.name)
    try:
        yield made
        await made.settled()
    finally:
        await client.aclose()


def image(layer: bytes) -> bytes:
    """An image manifest naming ``layer`` (and a config of its own)."""
    config = canonical({"architecture": "amd64", "os": "linux", "seed": uuid.uuid4().hex})
    return canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
        }
    )


# -- manifests by tag: the TTL ------------------------------------------------------------------------------------


async def test_a_tag_past_its_ttl_is_asked_again_with_a_head_and_kept_when_unchanged(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    first = remote.tag("app", "v1", image(b"layer one"))

    fetched = await cache.manifest(up, name, "v1")
    await proxy.settled()
    assert (fetched.manifest.digest, fetched.stale) == (first, False)
    assert remote.requests == ["GET /v2/app/manifests/v1", f"GET /v2/app/referrers/{first}"]

    # Within the TTL the stored copy is served without asking.
    remote.requests.clear()
    assert (await cache.manifest(up, name, "v1")).manifest.digest == first
    assert remote.requests == []

    # Past it: one HEAD; the same digest keeps the stored copy and renews the check.
    await proxy.age_tag_check("v1")
    revalidated = await cache.manifest(up, name, "v1")
    assert (revalidated.manifest.digest, revalidated.stale) == (first, False)
    assert revalidated.manifest.content == remote.manifests["app:v1"][1]
    assert remote.requests == ["HEAD /v2/app/manifests/v1"]
    assert is_fresh(await cache.checks.checked_at(name, "v1"), TTL)
    remote.requests.clear()
    assert (await cache.manifest(up, name, "v1")).manifest.digest == first
    assert remote.requests == []

    # The tag moved upstream: once the TTL ran out, the HEAD sees another digest and the new manifest is fetched.
    second = remote.tag("app", "v1", image(b"layer two"))
    await proxy.age_tag_check("v1")
    moved = await cache.manifest(up, name, "v1")
    await proxy.settled()
    assert (moved.manifest.digest, moved.stale) == (second, False)
    assert remote.requests == [
        "HEAD /v2/app/manifests/v1",
        "GET /v2/app/manifests/v1",
        f"GET /v2/app/referrers/{second}",
    ]
    assert (await proxy.env.registry.manifests.get(name, "v1")).digest == second
    assert (await proxy.env.registry.manifests.get(name, first)).digest == first  # still served by digest


async def test_a_tag_past_its_ttl_is_served_stale_while_the_upstream_is_down(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    digest = remote.tag("app", "v1", image(b"layer"))
    await cache.manifest(up, name, "v1")
    await proxy.settled()
    await proxy.age_tag_check("v1")
    remote.down, remote.requests = True, []

    served = await cache.manifest(up, name, "v1")
    assert (served.manifest.digest, served.stale) == (digest, True)
    assert remote.requests == ["HEAD /v2/app/manifests/v1"]
    assert not is_fresh(await cache.checks.checked_at(name, "v1"), TTL)  # not confirmed: asked again next time
    # A tag never fetched has nothing to fall back on.
    with pytest.raises(Unavailable, match="cannot send this manifest now"):
        await cache.manifest(up, name, "v2")


async def test_the_proxy_of_a_repository_is_found_by_its_namespace(proxy: Proxy) -> None:
    up = proxy.upstream
    assert (up.url, up.username, up.password, up.tag_ttl_seconds) == (UPSTREAM, "bob", "pw", TTL)  # opened
    assert await proxy.cache.upstream_of(f"{up.namespace}/team/app") == up
    assert await proxy.cache.upstream_of(f"{proxy.other}/app") is None  # a namespace that is no proxy
    assert await proxy.cache.upstream_of(up.namespace) is None  # a name without a namespace


async def test_a_manifest_by_digest_is_never_asked_again_and_one_unknown_upstream_is_not_found(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    digest = remote.tag("app", "v1", image(b"layer"))
    assert (await cache.manifest(up, name, digest)).manifest.digest == digest
    await proxy.settled()
    remote.requests.clear()
    remote.down = True  # content-addressed: served as stored, whatever the upstream
    served = await cache.manifest(up, name, digest)
    assert (served.manifest.digest, served.stale) == (digest, False)
    assert remote.requests == []

    remote.down = False
    unknown = sha256(b"no such manifest")
    for reference in ("nope", unknown):
        with pytest.raises(NotFound, match="and to the upstream") as raised:
            await cache.manifest(up, name, reference)
        assert (raised.value.subject, raised.value.detail) == ("manifest", {"reference": reference})
    with pytest.raises(NotFound):
        await proxy.env.registry.manifests.get(name, "nope")


async def test_the_upstream_referrers_of_an_image_are_stored_with_it_once(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    subject = image(b"signed layer")
    digest = remote.tag("app", "v1", subject)
    remote.tag("app", "latest", subject)
    descriptors: list[dict[str, Any]] = []
    for kind in ("signature", "sbom"):
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": f"application/vnd.test.{kind}",
                "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
                "layers": [],
                "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(subject)},
            }
        )
        descriptors.append({"mediaType": OCI_MANIFEST, "digest": remote.tag("app", kind, body), "size": len(body)})
    remote.referrers[digest] = [*descriptors, {"mediaType": OCI_MANIFEST, "size": 1}]  # one without a digest

    await cache.manifest(up, name, "v1")
    await proxy.settled()
    # Each referrer stored is asked for referrers of its own, in the background (so in no particular order).
    assert sorted(remote.requests) == sorted(
        [
            "GET /v2/app/manifests/v1",
            f"GET /v2/app/referrers/{digest}",
            *(f"GET /v2/app/{kind}/{d['digest']}" for d in descriptors for kind in ("manifests", "referrers")),
        ]
    )
    for descriptor in descriptors:
        stored = await proxy.env.registry.manifests.get(name, descriptor["digest"])
        assert stored.content == remote.manifests[f"app:{descriptor['digest']}"][1]
    # Another tag of the same image: its referrers are asked for again, but those stored are not fetched again.
    remote.requests.clear()
    await cache.manifest(up, name, "latest")
    await proxy.settled()
    assert remote.requests == ["GET /v2/app/manifests/latest", f"GET /v2/app/referrers/{digest}"]


async def test_referrers_the_upstream_cannot_send_leave_the_image_and_the_other_referrers_served(
    proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    subject = image(b"layer")
    digest = remote.tag("app", "v1", subject)
    listed = sha256(b"a referrer the upstream lists but does not serve")
    body = canonical(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.test.signature",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": sha256(b"{}"), "size": 2},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(subject)},
        }
    )
    served = remote.tag("app", "signature", body)
    remote.referrers[digest] = [
        {"mediaType": OCI_MANIFEST, "digest": listed, "size": 10},  # first: it does not keep the next one out
        {"mediaType": OCI_MANIFEST, "digest": served, "size": len(body)},
    ]
    with caplog.at_level(logging.INFO, logger="dockyard.proxy"):
        fetched = await cache.manifest(up, name, "v1")
        await proxy.settled()
    assert fetched.manifest.digest == digest
    assert f"GET /v2/app/manifests/{listed}" in remote.requests
    assert [r.getMessage() for r in caplog.records if "not fetched" in r.getMessage()] == [
        f"proxy: referrer {listed} of {name}@{digest} not fetched: upstream has no manifest app:{listed} (404)"
    ]
    assert (await proxy.env.registry.manifests.get(name, "v1")).digest == digest
    assert (await proxy.env.registry.manifests.get(name, served)).content == body


# -- manifests Dockyard cannot take -----------------------------------------------------------------------------


async def test_an_upstream_manifest_dockyard_cannot_store_is_unavailable_and_nothing_is_kept(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    legacy = canonical({"schemaVersion": 1, "name": "app", "tag": "old", "fsLayers": [], "history": []})
    digest = remote.tag("app", "old", legacy, SCHEMA1)

    for reference in ("old", digest):
        with pytest.raises(Unavailable, match="the upstream sent a manifest Dockyard cannot store") as raised:
            await cache.manifest(up, name, reference)
        assert raised.value.subject == "upstream"
    for reference in ("old", digest):
        with pytest.raises(NotFound):
            await proxy.env.registry.manifests.get(name, reference)
    assert await cache.checks.checked_at(name, "old") is None  # the tag was never confirmed
    assert remote.requests == [f"GET /v2/app/manifests/{reference}" for reference in ("old", digest)]


async def test_an_upstream_manifest_that_does_not_match_its_digest_is_unavailable(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    asked = sha256(b"what the client asked for")
    remote.manifests[f"app:{asked}"] = (OCI_MANIFEST, image(b"something else"))
    with pytest.raises(Unavailable, match="does not match its digest"):
        await cache.manifest(up, name, asked)
    with pytest.raises(NotFound):
        await proxy.env.registry.manifests.get(name, asked)


# -- blobs --------------------------------------------------------------------------------------------------------


async def test_a_blob_head_answered_without_a_size_is_unavailable(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    layer = b"a layer only the upstream has"
    digest = sha256(layer)
    remote.blobs[digest] = layer

    sized = await cache.blob(up, name, Digest.parse(digest), head=True)
    assert sized == BlobInfo(digest, len(layer))
    remote.blob_sizes = False
    with pytest.raises(Unavailable, match="did not say the blob's size"):
        await cache.blob(up, name, Digest.parse(digest), head=True)
    assert remote.requests == [f"HEAD /v2/app/blobs/{digest}"] * 2  # a HEAD never fetches the blob
    with pytest.raises(NotFound):
        await proxy.env.registry.blobs.stat(name, Digest.parse(digest))


async def test_a_blob_stored_for_another_repository_is_linked_when_a_cached_manifest_names_it(
    proxy: Proxy,
) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    layer = b"a layer pushed to another repository " + uuid.uuid4().bytes
    digest = await proxy.env.blob(f"{proxy.other}/app", layer)
    remote.tag("app", "v1", image(layer))
    await cache.manifest(up, name, "v1")
    await proxy.settled()
    remote.down, remote.requests = True, []  # the upstream is not asked at all

    for head in (False, True):
        served = await cache.blob(up, name, Digest.parse(digest), head=head)
        assert served == BlobInfo(digest, len(layer))
    assert remote.requests == []
    assert await proxy.env.registry.blobs.stat(name, Digest.parse(digest)) == BlobInfo(digest, len(layer))


async def test_a_blob_stored_elsewhere_is_linked_only_once_the_upstream_confirms_it(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    layer = b"a stored layer no cached manifest names " + uuid.uuid4().bytes
    digest = await proxy.env.blob(f"{proxy.other}/app", layer)
    key = Digest.parse(digest)

    # The upstream repository does not hold it: not handed out, not linked.
    with pytest.raises(NotFound, match="and to the upstream"):
        await cache.blob(up, name, key, head=False)
    with pytest.raises(NotFound):
        await proxy.env.registry.blobs.stat(name, key)

    remote.blobs[digest] = layer
    assert await cache.blob(up, name, key, head=False) == BlobInfo(digest, len(layer))
    assert remote.requests == [f"HEAD /v2/app/blobs/{digest}"] * 2  # confirmed, never fetched again
    assert await proxy.env.registry.blobs.stat(name, key) == BlobInfo(digest, len(layer))


async def test_an_upstream_down_while_a_blob_is_wanted_is_unavailable(proxy: Proxy) -> None:
    remote, cache, up, name = proxy.remote, proxy.cache, proxy.upstream, proxy.name
    stored = b"stored for another repository " + uuid.uuid4().bytes
    stored_digest = Digest.parse(await proxy.env.blob(f"{proxy.other}/app", stored))
    missing = b"stored nowhere " + uuid.uuid4().bytes
    missing_digest = Digest.parse(sha256(missing))
    remote.blobs = {str(stored_digest): stored, str(missing_digest): missing}
    remote.down = True

    # Stored elsewhere: the upstream must confirm its repository holds it, and cannot.
    with pytest.raises(Unavailable, match="cannot send this blob now") as raised:
        await cache.blob(up, name, stored_digest, head=False)
    assert raised.value.subject == "upstream"
    # A HEAD of a blob not stored asks for its size, and cannot.
    with pytest.raises(Unavailable, match="cannot send this blob now"):
        await cache.blob(up, name, missing_digest, head=True)
    # Stored nowhere: the fetch cannot start.
    with pytest.raises(Unavailable, match="cannot send the blob now"):
        await cache.blob(up, name, missing_digest, head=False)
    assert remote.requests == [
        f"HEAD /v2/app/blobs/{stored_digest}",
        f"HEAD /v2/app/blobs/{missing_digest}",
        f"GET /v2/app/blobs/{missing_digest}",
    ]
    for digest in (stored_digest, missing_digest):
        with pytest.raises(NotFound):
            await proxy.env.registry.blobs.stat(name, digest)

    # Back up (once the failed fetch let go of its lease): the same requests succeed, and the fetched blob is stored
    # while it streams.
    await proxy.settled()
    remote.down = False
    assert await cache.blob(up, name, stored_digest, head=False) == BlobInfo(str(stored_digest), len(stored))
    teed = await cache.blob(up, name, missing_digest, head=False)
    assert not isinstance(teed, BlobInfo)
    assert teed.size == len(missing)
    assert b"".join([chunk async for chunk in teed.chunks]) == missing
    assert await proxy.env.registry.blobs.stat(name, missing_digest) == BlobInfo(str(missing_digest), len(missing))
