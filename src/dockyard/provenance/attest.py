"""``Attester``: the ``signing`` stage of a build (the ``builds.attest`` job). For every image platform the build
pushed, it computes the SBOM with the scanning feature's inventory (``dockyard.inventory.referrers``: the same
SPDX 2.3 document as ``GET …/sbom``) and the SLSA v1 provenance (``statements.slsa_predicate``), wraps each as an
in-toto Statement v1 about the platform's manifest digest in a DSSE envelope signed with the namespace's managed
signing key, and attaches both as OCI referrers (``referrers.push_referrer``, through the registry services); then
it signs the pushed manifest (an index covers its platforms) in cosign's tag scheme (``dockyard.trust.signer``), so
a repository under ``enforce`` serves it, and ends the build ``succeeded``. (The unsigned SPDX document itself is
attached to every pushed image, built or not, by the inventory job.)

A namespace without a managed signing key still gets its SBOM and provenance, in envelopes without signatures,
and an unsigned image; the build's log says so. A domain error (the image deleted meanwhile, a quota reached) fails
the build at ``signing``; a storage error raises, and the job retries. Idempotent: a build no longer in ``signing``
is left alone, and attaching again pushes the same blobs and (for the same inputs) the same manifests.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dockyard.builds import records
from dockyard.builds.attestation import AttestInputs
from dockyard.builds.logs import LogWriter
from dockyard.core import mediatypes as mt
from dockyard.core.manifest import parse_manifest
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.errors import DomainError, NotFound
from dockyard.inventory import referrers
from dockyard.inventory.service import InventoryService
from dockyard.provenance import statements
from dockyard.registry.services import Registry
from dockyard.settings import Settings
from dockyard.signing.keys import PrivateKey
from dockyard.trust.manage import TrustService
from dockyard.trust.signer import sign_image

log = logging.getLogger("dockyard.provenance")
ACTOR = "dockyard-build"


@dataclass(frozen=True, slots=True)
class Platform:
    """One image platform of what a build pushed: its manifest's descriptor and ``os/arch`` (``""`` alone)."""

    media_type: str
    digest: str
    size: int
    platform: str

    @property
    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Attester:
    """One per job runner. ``attest(inputs)`` runs the signing stage of one build to its end."""

    def __init__(
        self, db: Database, registry: Registry, inventory: InventoryService, trust: TrustService, settings: Settings
    ) -> None:
        self.db = db
        self.registry = registry
        self.inventory = inventory
        self.trust = trust
        self.settings = settings

    async def attest(self, inputs: AttestInputs) -> None:
        async with self.db.read() as conn:
            row = await records.load(conn, inputs.build)
        if row is None or row.state != records.SIGNING:
            return
        writer = LogWriter(self.db, inputs.build)
        await writer.start()
        try:
            try:
                await self._attest(inputs, writer)
            except DomainError as exc:
                reason = f"signing: {exc.message}"
                await writer.line(f"build failed: {reason}")
                await writer.flush()
                await self._finish(inputs.build, records.FAILED, error=reason[:1000])
                return
            await writer.line(f"build succeeded: {inputs.digest}")
            await writer.flush()
            await self._finish(inputs.build, records.SUCCEEDED)
        finally:
            await writer.close()

    async def _finish(self, build_id: int, state: str, **values: Any) -> None:
        async with self.db.write() as conn:
            await records.change_state(conn, build_id, state, expect=(records.SIGNING,), **values)

    async def _key(self, namespace: str, writer: LogWriter) -> PrivateKey | None:
        try:
            key = await self.trust.managed_private_key(namespace)
        except NotFound:
            await writer.line(
                f"{namespace} has no managed signing key: the SBOM and provenance are attached unsigned and the "
                f"image is not signed (create one: POST /api/v2/namespaces/{namespace}/signing-key)"
            )
            return None
        return key

    async def _attest(self, inputs: AttestInputs, writer: LogWriter) -> None:
        base = referrers.server_url(self.settings)
        host = urlsplit(base).netloc
        subject_name = f"{host}/{inputs.repository}"
        key = await self._key(namespace_of(inputs.repository), writer)
        builder_id = f"{base}/builders/{inputs.builder}"
        invocation = f"{base}/api/v2/repositories/{inputs.repository}/builds/{inputs.build_uuid}"
        predicate = statements.slsa_predicate(inputs, builder_id=builder_id, invocation_id=invocation)
        for platform in await self._platforms(inputs):
            sbom = await self._sbom(inputs.repository, platform, base)
            for predicate_type, body in (
                (statements.SPDX_DOCUMENT, sbom),
                (statements.SLSA_PROVENANCE_V1, predicate),
            ):
                payload = statements.statement(subject_name, platform.digest, predicate_type, body)
                attached = await self._attach(inputs, platform, predicate_type, statements.envelope(payload, key))
                what = "SBOM (SPDX 2.3)" if predicate_type == statements.SPDX_DOCUMENT else "provenance (SLSA v1)"
                await writer.line(f"{what} of {platform.digest} attached: {attached}")
        if key is not None:
            digest, tag = await sign_image(
                self.registry, inputs.repository, inputs.digest, key, identity=subject_name, actor=ACTOR
            )
            await writer.line(f"image {digest} signed with the namespace's managed key ({tag})")

    async def _platforms(self, inputs: AttestInputs) -> list[Platform]:
        manifest = await self.registry.manifests.get(inputs.repository, inputs.digest)
        parsed = parse_manifest(manifest.content, manifest.media_type)
        if not parsed.is_index:
            return [Platform(manifest.media_type, manifest.digest, len(manifest.content), "")]
        found = []
        for child in parsed.children:
            if child.media_type not in mt.IMAGE_MANIFESTS:
                continue
            plat = child.platform or {}
            name = "/".join(str(plat[k]) for k in ("os", "architecture", "variant") if plat.get(k))
            if name == "unknown/unknown":
                continue  # BuildKit's attestation manifests
            found.append(Platform(child.media_type, str(child.digest), child.size, name))
        return found

    async def _sbom(self, repository: str, platform: Platform, base: str) -> dict[str, Any]:
        """The SPDX 2.3 document of ``platform`` (computing its inventory now if the push's job has not yet)."""
        return await referrers.sbom_document(self.inventory, repository, platform.digest, platform.platform, base)

    async def _attach(self, inputs: AttestInputs, platform: Platform, predicate_type: str, envelope: bytes) -> str:
        """Push the envelope and its referrer manifest; the manifest's digest."""
        body = statements.referrer_manifest(
            platform.descriptor, envelope, predicate_type, created=inputs.finished_on, build=inputs.build_uuid
        )
        return await referrers.push_referrer(self.registry, inputs.repository, body, envelope, actor=ACTOR)
