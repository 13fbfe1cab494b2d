"""``ProxyCache``: what the ``/v2`` handlers ask for a repository of a proxy namespace.

Manifests: by digest, the stored copy or the upstream's (stored, then served); by tag, the stored copy while the
tag is fresh (``policy``), else a ``HEAD`` upstream — the same digest keeps the copy (and renews the check), a
new one is fetched and the tag moved. When the upstream cannot answer, the stored copy is served, stale. A
manifest is stored as the upstream sent it, byte for byte, without its blobs (``require_references=False``): they
are fetched when first pulled. The referrers the upstream knows of an image (signatures, SBOMs) are fetched in the
background after it, when the upstream has the referrers API.

Blobs: the stored copy if the repository has it; a blob stored for any repository is linked without copying
when a cached manifest of this repository names it, or when the upstream confirms (``HEAD``) that its repository
holds it — so a proxy never hands out a blob its upstream repository was not shown to have; anything else is
fetched once (``flights``) and streamed to the client while it is stored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from dockyard.core.digest import Digest
from dockyard.core.names import namespace_of
from dockyard.errors import Invalid, NotFound, Unavailable
from dockyard.proxy.blob_stream import declared_size
from dockyard.proxy.flights import BlobFlights, Teed
from dockyard.proxy.manage import ProxyDirectory, Upstream
from dockyard.proxy.policy import TagChecks, is_fresh
from dockyard.proxy.upstream import UpstreamClient, UpstreamDown, UpstreamManifest, UpstreamMissing
from dockyard.registry.blobs import BlobInfo
from dockyard.registry.manifests import StoredManifest
from dockyard.registry.services import Registry

log = logging.getLogger("dockyard.proxy")
MAX_REFERRERS = 100


@dataclass(frozen=True, slots=True)
class CachedManifest:
    manifest: StoredManifest
    stale: bool  # served without the upstream's confirmation (it could not be asked)


def _unavailable(exc: Exception, what: str) -> Unavailable:
    return Unavailable("upstream", f"the upstream registry cannot send {what} now: {exc}")


class ProxyCache:
    def __init__(
        self,
        registry: Registry,
        directory: ProxyDirectory,
        client: UpstreamClient,
        flights: BlobFlights,
        checks: TagChecks,
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.client = client
        self.flights = flights
        self.checks = checks
        self._background: set[asyncio.Task[None]] = set()

    async def upstream_of(self, name: str) -> Upstream | None:
        """The proxy settings serving repository ``name``, or None if its namespace is no proxy."""
        if "/" not in name:
            return None
        return await self.directory.get(namespace_of(name))

    # -- manifests ----------------------------------------------------------------------------------------

    async def manifest(self, upstream: Upstream, name: str, reference: str) -> CachedManifest:
        """Raises NotFound (neither here nor upstream), Unavailable (not here, upstream down)."""
        by_digest = ":" in reference
        try:
            local: StoredManifest | None = await self.registry.manifests.get(name, reference)
        except NotFound:
            local = None
        if local is not None and by_digest:
            return CachedManifest(local, False)
        if local is not None and is_fresh(await self.checks.checked_at(name, reference), upstream.tag_ttl_seconds):
            return CachedManifest(local, False)
        repository = upstream.repository(name)
        try:
            if local is not None:
                head = await self.client.manifest(upstream, repository, reference, head=True)
                if head.digest == local.digest:
                    await self.checks.confirm(name, reference)
                    return CachedManifest(local, False)
            fetched = await self.client.manifest(upstream, repository, reference)
        except UpstreamDown as exc:
            if local is not None:
                log.info("proxy: serving %s:%s stale: %s", name, reference, exc)
                return CachedManifest(local, True)
            raise _unavailable(exc, "this manifest") from exc
        except UpstreamMissing as exc:
            raise NotFound(
                "manifest", "manifest unknown to registry (and to the upstream)", {"reference": reference}
            ) from exc
        return CachedManifest(await self._store(upstream, name, reference, fetched), False)

    async def _store(self, upstream: Upstream, name: str, reference: str, fetched: UpstreamManifest) -> StoredManifest:
        content = fetched.content or b""
        if ":" in reference:
            wanted = Digest.parse(reference)
            if str(Digest.of(content, wanted.algorithm)) != reference:
                raise Unavailable("upstream", "the upstream sent a manifest that does not match its digest")
        try:
            result = await self.registry.manifests.put(
                name, reference, content, fetched.media_type, require_references=False
            )
        except Invalid as exc:
            raise Unavailable("upstream", f"the upstream sent a manifest Dockyard cannot store: {exc.message}") from exc
        if ":" not in reference:
            await self.checks.confirm(name, reference)
        self._in_background(self._fetch_referrers(upstream, name, result.digest))
        return await self.registry.manifests.get(name, result.digest)

    def _in_background(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.create_task(work)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _fetch_referrers(self, upstream: Upstream, name: str, digest: str) -> None:
        """Store the upstream's referrers of ``digest`` (signatures, SBOMs) with the image; best effort."""
        try:
            descriptors = await self.client.referrers(upstream, upstream.repository(name), digest)
        except Exception as exc:  # the image is served whatever happens to its referrers
            log.info("proxy: referrers of %s@%s not fetched: %s", name, digest, exc)
            return
        for descriptor in descriptors[:MAX_REFERRERS]:
            referrer = str(descriptor.get("digest", ""))
            if ":" not in referrer:
                continue
            try:
                try:
                    await self.registry.manifests.get(name, referrer)
                    continue
                except NotFound:
                    pass
                fetched = await self.client.manifest(upstream, upstream.repository(name), referrer)
                await self._store(upstream, name, referrer, fetched)
            except UpstreamDown as exc:  # the rest would fail alike
                log.info("proxy: referrers of %s@%s not fetched: %s", name, digest, exc)
                return
            except Exception as exc:  # one referrer that cannot be had does not keep the others out
                log.info("proxy: referrer %s of %s@%s not fetched: %s", referrer, name, digest, exc)

    # -- blobs --------------------------------------------------------------------------------------------

    async def blob(self, upstream: Upstream, name: str, digest: Digest, *, head: bool) -> BlobInfo | Teed:
        """What to send for a blob of a proxy repository: a stored blob (``BlobInfo``, as ``BlobService.stat``
        answers) or one streaming from upstream. A HEAD of a blob not stored asks the upstream for its size only.
        Raises NotFound, Unavailable."""
        key = str(digest)
        try:
            return await self.registry.blobs.stat(name, digest)
        except NotFound:
            pass
        if await self.registry.blobs.adopt(name, key, referenced=True) is not None:
            return await self.registry.blobs.stat(name, digest)
        repository = upstream.repository(name)
        try:
            if head:
                return BlobInfo(key, await self._upstream_size(upstream, repository, key))
            if await self.flights.stored(key):
                return await self._confirm_and_link(upstream, name, repository, digest)
            teed = await self.flights.fetch(upstream, name, repository, key)
            if teed is not None:
                return teed
            try:
                return await self.registry.blobs.stat(name, digest)
            except NotFound:
                return await self._confirm_and_link(upstream, name, repository, digest)
        except UpstreamDown as exc:
            raise _unavailable(exc, "this blob") from exc
        except UpstreamMissing as exc:
            raise NotFound("blob", "blob unknown to registry (and to the upstream)", {"digest": key}) from exc

    async def _upstream_size(self, upstream: Upstream, repository: str, digest: str) -> int:
        response = await self.client.send(upstream, "HEAD", f"/v2/{repository}/blobs/{digest}")
        self.client.check(response, f"blob {digest}")
        size = declared_size(response.headers.get("content-length"))
        if size is None:
            raise UpstreamDown("the upstream did not say the blob's size")
        return size

    async def _confirm_and_link(self, upstream: Upstream, name: str, repository: str, digest: Digest) -> BlobInfo:
        if not await self.client.has_blob(upstream, repository, str(digest)):
            raise UpstreamMissing(str(digest))
        await self.registry.blobs.adopt(name, str(digest), referenced=False)
        return await self.registry.blobs.stat(name, digest)
