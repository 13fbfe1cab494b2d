"""The two ends of a replication: this Dockyard (``LocalRegistry``, through the registry services) and another
registry (``RemoteRegistry``, through the pull-through cache's ``UpstreamClient``: the same Docker token flow and
credentials, with ``push`` added to the scope for writes). ``Endpoint`` is what the copier asks of either.

Every method answers for one repository of its side. Blobs move as streams (``open_blob`` yields chunks,
``put_blob`` takes them), never whole in memory. Missing things are ``None``/``False``; anything else that goes
wrong raises (``UpstreamDown``/``UpstreamMissing`` from a remote, domain errors from this Dockyard), and the copier
records it as the artifact's failure.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urljoin, urlsplit

import httpx
from sqlalchemy import select

from dockyard.core.digest import Digest
from dockyard.errors import NotFound
from dockyard.models import Repository, RepositoryBlob
from dockyard.proxy.manage import Upstream
from dockyard.proxy.upstream import MANIFEST_ACCEPT, UpstreamClient, UpstreamDown, UpstreamMissing
from dockyard.registry.services import Registry
from dockyard.registry.uploads import ChunkSpec

PAGE = 1000
HUB_PAGE = 100
REFUSALS = frozenset({401, 403, 404, 405})  # a catalog the remote will not show the rule's account
MAX_PAGES = 100
WRITE = "pull,push"


class ListingRefused(UpstreamDown):
    """The remote does not list its repositories (no catalog for the rule's account, nor a Hub API list): a run
    whose rule names no repositories cannot know what to copy, and trying again does not change that."""


@dataclass(frozen=True, slots=True)
class ManifestCopy:
    digest: str
    media_type: str
    content: bytes


class Endpoint(Protocol):
    """One side of a replication, as the copier sees it."""

    async def repositories(self, prefix: str) -> list[str]:
        """Repository names starting with ``prefix`` (``ns/``)."""
        ...

    async def tags(self, repository: str) -> list[str]: ...

    async def manifest(self, repository: str, reference: str) -> ManifestCopy | None: ...

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        """The digest ``reference`` names here (a cheap look-up: HEAD on a remote), or None."""
        ...

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]]: ...

    async def has_blob(self, repository: str, digest: str) -> bool: ...

    def open_blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    async def mount(self, repository: str, digest: str, source: str) -> bool:
        """Link blob ``digest`` of ``source`` (a repository of this side) into ``repository``; False if not done."""
        ...

    async def put_blob(self, repository: str, digest: str, size: int, chunks: AsyncIterator[bytes]) -> None: ...

    async def put_manifest(self, repository: str, reference: str, manifest: ManifestCopy) -> None: ...

    async def delete_tag(self, repository: str, tag: str) -> None:
        """Remove the tag (only the tag, other tags of its manifest stay). Raises when that cannot be done."""
        ...


class LocalRegistry:
    """This Dockyard, through its registry services; writes are made as ``actor`` (audit and events)."""

    def __init__(self, registry: Registry, actor: str) -> None:
        self.registry = registry
        self.actor = actor

    async def repositories(self, prefix: str) -> list[str]:
        async with self.registry.ctx.db.read() as conn:
            rows = await conn.execute(
                select(Repository.name)
                .where(Repository.name.startswith(prefix, autoescape=True))
                .order_by(Repository.name)
            )
            return list(rows.scalars().all())

    async def holders(self, digest: str, prefix: str, limit: int = 5) -> list[str]:
        """Repositories starting with ``prefix`` that hold blob ``digest`` (candidates for a mount)."""
        async with self.registry.ctx.db.read() as conn:
            rows = await conn.execute(
                select(Repository.name)
                .join(RepositoryBlob, RepositoryBlob.repository_id == Repository.id)
                .where(RepositoryBlob.digest == digest, Repository.name.startswith(prefix, autoescape=True))
                .order_by(Repository.name)
                .limit(limit)
            )
            return list(rows.scalars().all())

    async def tags(self, repository: str) -> list[str]:
        found: list[str] = []
        last: str | None = None
        try:
            while True:
                page = await self.registry.listing.tags(repository, PAGE, last)
                found.extend(page.items)
                if not page.more or not page.items:
                    return found
                last = page.items[-1]
        except NotFound:
            return found

    async def manifest(self, repository: str, reference: str) -> ManifestCopy | None:
        try:
            stored = await self.registry.manifests.get(repository, reference)
        except NotFound:
            return None
        return ManifestCopy(stored.digest, stored.media_type, stored.content)

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        found = await self.manifest(repository, reference)
        return None if found is None else found.digest

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]]:
        return await self.registry.listing.referrers(repository, digest, None)

    async def has_blob(self, repository: str, digest: str) -> bool:
        try:
            await self.registry.blobs.stat(repository, Digest.parse(digest))
        except NotFound:
            return False
        return True

    @asynccontextmanager
    async def open_blob(self, repository: str, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        await self.registry.blobs.stat(repository, Digest.parse(digest))  # NotFound unless the repository has it
        yield self.registry.blobs.stream(digest)

    async def mount(self, repository: str, digest: str, source: str) -> bool:
        size = await self.registry.blobs.mount(repository, Digest.parse(digest), source, self.actor)
        return size is not None

    async def put_blob(self, repository: str, digest: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        await self.registry.uploads.monolithic(
            repository, Digest.parse(digest), chunks, ChunkSpec(length=size), self.actor
        )

    async def put_manifest(self, repository: str, reference: str, manifest: ManifestCopy) -> None:
        await self.registry.manifests.put(
            repository, reference, manifest.content, manifest.media_type, actor=self.actor
        )

    async def delete_tag(self, repository: str, tag: str) -> None:
        try:
            await self.registry.manifests.delete(repository, tag, self.actor)
        except NotFound:
            return


def _next_page(response: httpx.Response) -> str | None:
    """The ``Link: <…>; rel="next"`` of a paginated list, if any."""
    link = str(response.headers.get("link", ""))
    if 'rel="next"' not in link or "<" not in link:
        return None
    return link[link.index("<") + 1 : link.index(">")]


class RemoteRegistry:
    """Another registry, through ``UpstreamClient`` with the rule's URL and credentials."""

    def __init__(self, client: UpstreamClient, upstream: Upstream) -> None:
        self.client = client
        self.upstream = upstream

    async def _list(self, path: str, key: str, scope: str | None = None, *, refusals: bool = False) -> list[str]:
        """Every page of a ``/v2`` list; a 404 is an empty list, unless ``refusals`` (the catalog): then a 404,
        401, 403 or 405 raises ``ListingRefused``."""
        found: list[str] = []
        next_path: str | None = path
        for _ in range(MAX_PAGES):
            if next_path is None:
                break
            response = await self.client.send(self.upstream, "GET", next_path, scope=scope)
            if refusals and response.status_code in REFUSALS:
                raise ListingRefused(f"GET {urlsplit(path).path} answered {response.status_code}")
            if response.status_code == 404:
                return found
            self.client.check(response, path)
            try:
                items = json.loads(response.content).get(key) or []
            except (ValueError, AttributeError) as exc:
                raise UpstreamDown(f"the remote's {key} list is not JSON") from exc
            found.extend(str(item) for item in items)
            following = _next_page(response)
            next_path = None if following is None else urljoin(f"{self.upstream.url}/", following)
        return found

    async def repositories(self, prefix: str) -> list[str]:
        """The remote's repositories starting with ``prefix`` (``ns/``): its ``/v2/_catalog``, or, when it refuses
        that (Docker Hub does; a registry may keep it to accounts with rights the rule's account lacks), the Hub
        API's list of the namespace's repositories where the remote has one (``/api/v2/namespaces/<ns>/
        repositories``, as Dockyard serves it). Raises ``ListingRefused`` when neither answers."""
        try:
            names = await self._list(f"/v2/_catalog?n={PAGE}", "repositories", "registry:catalog:*", refusals=True)
        except ListingRefused as refused:
            listed = await self._hub_repositories(prefix.rstrip("/"))
            if listed is None:
                raise ListingRefused(
                    f"the remote does not list its repositories ({refused}; no Hub API list of "
                    f"{prefix.rstrip('/') or 'its namespace'} either): name the repositories in the rule's "
                    "repository filter instead of a pattern"
                ) from refused
            names = listed
        return sorted(name for name in names if name.startswith(prefix))

    async def _hub_repositories(self, namespace: str) -> list[str] | None:
        """The repositories of ``namespace`` by the remote's Hub API (Docker Hub's list envelope: ``results``
        with ``name``, ``next`` an absolute URL), with the rule's credentials as Basic auth; None when the remote
        has no such API or refuses it. Only pages on the remote's own URL are followed (the credentials go
        nowhere else)."""
        if not namespace or "/" in namespace:
            return None
        url = f"{self.upstream.url}/api/v2/namespaces/{quote(namespace)}/repositories?page_size={HUB_PAGE}"
        auth = None
        if self.upstream.username is not None and self.upstream.password is not None:
            auth = httpx.BasicAuth(self.upstream.username, self.upstream.password)
        found: list[str] = []
        for _ in range(MAX_PAGES):
            try:
                response = await self.client.http.get(url, auth=auth, follow_redirects=False)
                doc = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError):
                return None
            results = doc.get("results") if isinstance(doc, dict) else None
            if not isinstance(doc, dict) or not isinstance(results, list):
                return None
            found.extend(
                f"{namespace}/{item['name']}"
                for item in results
                if isinstance(item, dict) and isinstance(item.get("name"), str)
            )
            following = doc.get("next")
            if not isinstance(following, str) or not following.startswith(f"{self.upstream.url}/"):
                break
            url = following
        return found

    async def tags(self, repository: str) -> list[str]:
        return await self._list(f"/v2/{repository}/tags/list?n={PAGE}", "tags")

    async def manifest(self, repository: str, reference: str) -> ManifestCopy | None:
        try:
            got = await self.client.manifest(self.upstream, repository, reference)
        except UpstreamMissing:
            return None
        content = got.content or b""
        digest = str(Digest.of(content)) if ":" not in reference else reference
        if ":" in reference and str(Digest.of(content, Digest.parse(reference).algorithm)) != reference:
            raise UpstreamDown(f"the remote sent a manifest that does not match {reference}")
        return ManifestCopy(digest, got.media_type, content)

    async def manifest_digest(self, repository: str, reference: str) -> str | None:
        try:
            got = await self.client.manifest(self.upstream, repository, reference, head=True)
        except UpstreamMissing:
            return None
        if got.digest is None:
            full = await self.manifest(repository, reference)
            return None if full is None else full.digest
        return got.digest

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]]:
        return await self.client.referrers(self.upstream, repository, digest)

    async def has_blob(self, repository: str, digest: str) -> bool:
        return await self.client.has_blob(self.upstream, repository, digest)

    @asynccontextmanager
    async def open_blob(self, repository: str, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        async with self.client.blob(self.upstream, repository, digest) as response:
            yield response.aiter_bytes()

    async def _start_upload(self, repository: str, query: str = "") -> httpx.Response:
        return await self.client.send(
            self.upstream,
            "POST",
            f"/v2/{repository}/blobs/uploads/{query}",
            actions=WRITE,
            headers={"Content-Length": "0"},
        )

    async def mount(self, repository: str, digest: str, source: str) -> bool:
        response = await self._start_upload(repository, f"?mount={quote(digest)}&from={quote(source)}")
        if response.status_code == 201:
            return True
        self.client.check(response, f"a mount of {digest}")
        location = response.headers.get("location")
        if location:  # 202: an upload was opened instead; cancel it rather than leave it to expire at the remote
            cancelled = await self.client.send(
                self.upstream, "DELETE", urljoin(f"{self.upstream.url}/", location), actions=WRITE
            )
            await cancelled.aclose()
        return False

    async def put_blob(self, repository: str, digest: str, size: int, chunks: AsyncIterator[bytes]) -> None:
        started = await self._start_upload(repository)
        self.client.check(started, f"an upload to {repository}")
        location = started.headers.get("location")
        if not location:
            raise UpstreamDown("the remote opened an upload without a Location")
        url = urljoin(f"{self.upstream.url}/", location)
        url += ("&" if "?" in url else "?") + f"digest={quote(digest)}"
        response = await self.client.send(
            self.upstream,
            "PUT",
            url,
            actions=WRITE,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=chunks,
        )
        self.client.check(response, f"blob {digest}")

    async def put_manifest(self, repository: str, reference: str, manifest: ManifestCopy) -> None:
        response = await self.client.send(
            self.upstream,
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            actions=WRITE,
            headers={"Content-Type": manifest.media_type},
            content=manifest.content,
        )
        if response.status_code in (400, 404):  # e.g. MANIFEST_BLOB_UNKNOWN: say what the remote said
            raise UpstreamDown(f"the remote refused manifest {reference}: {response.text[:300]}")
        self.client.check(response, f"manifest {reference}")

    async def delete_tag(self, repository: str, tag: str) -> None:
        """``DELETE …/manifests/<tag>`` (OCI 1.1). A registry that deletes manifests only by digest (distribution)
        gets the manifest's digest deleted — only when no other tag of the repository names it."""
        response = await self.client.send(
            self.upstream, "DELETE", f"/v2/{repository}/manifests/{tag}", actions="delete,pull,push"
        )
        if response.status_code in (202, 204, 404):
            return
        if response.status_code not in (400, 405):
            self.client.check(response, f"tag {tag}")
        digest = await self.manifest_digest(repository, tag)
        if digest is None:
            return
        for other in await self.tags(repository):
            if other != tag and await self.manifest_digest(repository, other) == digest:
                raise UpstreamDown(
                    f"the remote deletes manifests only by digest, and tag {other} names the same manifest as {tag}"
                )
        response = await self.client.send(
            self.upstream, "DELETE", f"/v2/{repository}/manifests/{digest}", actions="delete,pull,push"
        )
        if response.status_code not in (202, 204, 404):
            self.client.check(response, f"manifest {digest}")
            raise UpstreamDown(f"the remote answered {response.status_code} to deleting {digest}")


__all__ = ["MANIFEST_ACCEPT", "Endpoint", "ListingRefused", "LocalRegistry", "ManifestCopy", "RemoteRegistry"]
