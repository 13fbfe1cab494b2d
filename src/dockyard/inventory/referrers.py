"""An image's documents as OCI 1.1 referrers: the one place that pushes a one-layer artifact (the empty config,
one payload layer, the image as ``subject``) through the registry services, and the SPDX 2.3 document of an
image's inventory as such a referrer.

- ``push_referrer`` stores the payload and the empty config as blobs and the artifact manifest in the image's
  repository; ``GET /v2/<name>/referrers/<digest>`` lists it. The builds' signing stage
  (``dockyard.provenance``) attaches its DSSE envelopes with it.
- ``sbom_document`` is the SPDX 2.3 document of an image platform (the same packages and writer as
  ``GET …/sbom``), computing its inventory first if needed.
- ``SbomReferrers.attach`` (run by the ``inventory.compute`` job after an image's inventory is ready) attaches
  that document itself — artifact type ``application/spdx+json``, annotated ``dev.dockyard.sbom: inventory`` —
  to every pushed image platform, in every repository holding it. Idempotent: the document of one inventory is
  byte-for-byte the same (its ``created`` is when the inventory was computed), so attaching again finds the
  referrer already there and pushes nothing; a document made by older detectors is replaced (the previous
  referrer deleted). Its blobs count in the namespace's storage usage like any artifact's, but a namespace with a
  storage limit gets no SBOM referrers (the server never itself causes a quota warning or refusal; a limit set
  meanwhile refuses the push: logged, the inventory stands); a pull-through cache's repositories get none (they
  mirror their upstream, referrers included). The referrer is not an image, so it is neither
  inventoried nor scanned (``repos.access.new_image_pushed``), and it stays pullable under every policy.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select

from dockyard.core import mediatypes as mt
from dockyard.core.digest import Digest
from dockyard.core.names import namespace_of
from dockyard.errors import DomainError, Invalid, NotFound, QuotaExceeded
from dockyard.inventory.model import SPDX_MEDIA_TYPE
from dockyard.inventory.service import FAILED, READY, InventoryBusy, InventoryService, InventoryState
from dockyard.models import Proxy
from dockyard.registry.quotas import usage
from dockyard.registry.services import Registry
from dockyard.settings import Settings

log = logging.getLogger("dockyard.inventory")

EMPTY_CONFIG: Final = b"{}"
SBOM_ANNOTATION: Final = "dev.dockyard.sbom"  # on the SBOM referrers Dockyard attaches itself
SBOM_ANNOTATION_VALUE: Final = "inventory"
CREATED_ANNOTATION: Final = "org.opencontainers.image.created"
ACTOR: Final = "dockyard-inventory"


def server_url(settings: Settings) -> str:
    """This Dockyard's URL as its users know it: ``base_url``, else the listener (SBOM document namespaces)."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


def _compact(document: object) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def referrer_manifest(
    subject: dict[str, Any],
    artifact_type: str,
    layer_media_type: str,
    payload: bytes,
    *,
    layer_annotations: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> bytes:
    """The OCI image manifest that attaches ``payload`` (one layer of ``layer_media_type``) to ``subject`` (a
    descriptor: mediaType, digest, size), with the empty config. Canonical JSON: the same inputs give the same
    digest."""
    layer: dict[str, Any] = {"mediaType": layer_media_type, "digest": str(Digest.of(payload)), "size": len(payload)}
    if layer_annotations:
        layer["annotations"] = layer_annotations
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": mt.OCI_EMPTY, "digest": str(Digest.of(EMPTY_CONFIG)), "size": len(EMPTY_CONFIG)},
        "layers": [layer],
        "subject": subject,
    }
    if annotations:
        manifest["annotations"] = annotations
    return _compact(manifest)


async def push_referrer(registry: Registry, repository: str, manifest: bytes, payload: bytes, *, actor: str) -> str:
    """Push the empty config, ``payload`` and the artifact ``manifest`` (from :func:`referrer_manifest`) into
    ``repository``, which must exist (a repository deleted meanwhile is not made again); the manifest's digest.
    Domain errors (a quota reached, the repository or the subject gone) propagate."""
    await registry.uploads.put_bytes(repository, EMPTY_CONFIG, actor, create=False)
    await registry.uploads.put_bytes(repository, payload, actor, create=False)
    digest = str(Digest.of(manifest))
    await registry.manifests.put(repository, digest, manifest, mt.OCI_MANIFEST, actor=actor, create=False)
    return digest


async def sbom_document(
    inventory: InventoryService,
    repository: str,
    digest: str,
    platform: str,
    base_url: str,
    *,
    ready: InventoryState | None = None,
) -> dict[str, Any]:
    """The SPDX 2.3 document of image platform ``repository@digest`` (computing its inventory now if the push's
    job has not yet, unless the caller has just seen it ``ready``); its namespace is
    ``<base_url>/spdx/<repository>/<digest>``. Raises ``Invalid`` when the inventory failed or the manifest is not
    an image."""
    state = ready if ready is not None and ready.state == READY else await inventory.compute(repository, digest)
    packages = await inventory.packages(digest) if state is not None else None
    if state is not None and packages is None and state.state != FAILED:
        # Pending again: the push's inventory job (or another attestation) is computing it right now.
        raise InventoryBusy(f"the inventory of {digest} is being computed; try again shortly")
    if state is None or packages is None:
        why = state.error if state is not None else "not an image"
        raise Invalid("manifest", f"no SBOM of {digest}: its inventory failed ({why})")
    from dockyard.inventory.documents import SbomSubject, spdx_json  # the SBOM libraries: on the first document

    subject = SbomSubject(
        repository=repository,
        digest=digest,
        platform=platform,
        os=state.os,
        packages=packages,
        created=state.finished_at or datetime.now(UTC),
    )
    document: dict[str, Any] = json.loads(spdx_json(subject, f"{base_url}/spdx/{repository}/{digest}"))
    return document


class SbomReferrers:
    """One per job runner: attaches each image platform's SPDX document as a referrer (module docstring)."""

    def __init__(self, registry: Registry, inventory: InventoryService, base_url: str) -> None:
        self.registry = registry
        self.inventory = inventory
        self.base_url = base_url

    async def attach(self, repository: str, digest: str, state: InventoryState | None = None) -> str | None:
        """Attach the SBOM of image platform ``repository@digest``; the referrer's digest, or None when there is
        none to attach (not an image, its inventory failed or pending, the image gone, a quota reached). ``state``:
        its inventory's, when the caller has just computed it (else it is read, and computed again if older
        detectors made it)."""
        known = state if state is not None else await self.inventory.state(digest)
        if known is None or known.state != READY or not await self._may_add(repository):
            return None
        try:
            subject = await self.registry.manifests.get(repository, digest)
            document = await sbom_document(self.inventory, repository, digest, "", self.base_url, ready=state)
        except (Invalid, NotFound):
            return None
        payload = _compact(document)
        created = str(document.get("creationInfo", {}).get("created", ""))
        body = referrer_manifest(
            {"mediaType": subject.media_type, "digest": digest, "size": len(subject.content)},
            SPDX_MEDIA_TYPE,
            SPDX_MEDIA_TYPE,
            payload,
            annotations={SBOM_ANNOTATION: SBOM_ANNOTATION_VALUE, CREATED_ANNOTATION: created},
        )
        wanted = str(Digest.of(body))
        ours = [
            str(d["digest"])
            for d in await self.registry.listing.referrers(repository, digest, SPDX_MEDIA_TYPE)
            if (d.get("annotations") or {}).get(SBOM_ANNOTATION) == SBOM_ANNOTATION_VALUE
        ]
        if wanted in ours:
            return wanted
        try:
            attached = await push_referrer(self.registry, repository, body, payload, actor=ACTOR)
        except (QuotaExceeded, NotFound) as exc:  # a quota reached, or the repository deleted meanwhile
            log.info("no SBOM referrer for %s@%s: %s", repository, digest, exc.message)
            return None
        for stale in ours:  # made from an older inventory of the same image
            try:
                await self.registry.manifests.delete(repository, stale, actor=ACTOR)
            except DomainError:
                continue
        return attached

    async def _may_add(self, repository: str) -> bool:
        """Not in a pull-through cache (it mirrors its upstream, whose referrers it fetches) nor in a namespace
        with a storage limit (a quota bounds what its users push: the server adds nothing to it, so never itself
        causes a quota warning or refusal)."""
        namespace = namespace_of(repository)
        async with self.registry.ctx.db.read() as conn:
            cache = await conn.execute(select(Proxy.namespace).where(Proxy.namespace == namespace))
            if cache.first() is not None:
                return False
            return (await usage(conn, namespace)).storage_limit is None
