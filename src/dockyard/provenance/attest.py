"""``Attester``: the ``signing`` stage of a build (the ``builds.attest`` job). For every image platform the build
pushed, it computes the SBOM with the scanning feature's inventory (``dockyard.inventory``: the same packages and
the same SPDX 2.3 writer as ``GET …/sbom``) and the SLSA v1 provenance (``statements.slsa_predicate``), wraps each
as an in-toto Statement v1 about the platform's manifest digest in a DSSE envelope signed with the namespace's
managed signing key, and attaches both as OCI referrers through the registry services; then it signs the pushed
manifest (an index covers its platforms) in cosign's tag scheme (``dockyard.trust.signer``), so a repository under
``enforce`` serves it, and ends the build ``succeeded``.

A namespace without a managed signing key still gets its SBOM and provenance, in envelopes without signatures,
and an unsigned image; the build's log says so. A domain error (the image deleted meanwhile, a quota reached) fails
the build at ``signing``; a storage error raises, and the job retries. Idempotent: a build no longer in ``signing``
is left alone, and attaching again pushes the same blobs and (for the same inputs) the same manifests.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from dockyard.builds import records
from dockyard.builds.attestation import AttestInputs
from dockyard.builds.logs import LogWriter
from dockyard.core import mediatypes as mt
from dockyard.core.digest import Digest
from dockyard.core.manifest import parse_manifest
from dockyard.core.names import namespace_of
from dockyard.db.engine import Database
from dockyard.errors import DomainError, Invalid, NotFound
from dockyard.inventory.documents import SbomSubject, spdx_json
from dockyard.inventory.service import InventoryService
from dockyard.provenance import statements
from dockyard.registry.services import Registry
from dockyard.registry.uploads import ChunkSpec
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


def server_url(settings: Settings) -> str:
    """This Dockyard's URL as its users know it: ``base_url``, else the listener."""
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


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
        base = server_url(self.settings)
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
        state = await self.inventory.compute(repository, platform.digest)
        packages = await self.inventory.packages(platform.digest) if state is not None else None
        if state is None or packages is None:
            why = state.error if state is not None else "not an image"
            raise Invalid("manifest", f"no SBOM of {platform.digest}: its inventory failed ({why})")
        subject = SbomSubject(
            repository=repository,
            digest=platform.digest,
            platform=platform.platform,
            os=state.os,
            packages=packages,
            created=state.finished_at or datetime.now(UTC),
        )
        document: dict[str, Any] = json.loads(spdx_json(subject, f"{base}/spdx/{repository}/{platform.digest}"))
        return document

    async def _put_blob(self, repository: str, data: bytes) -> None:
        digest = Digest.of(data)
        await self.registry.uploads.monolithic(repository, digest, _one(data), ChunkSpec(None, len(data)), ACTOR)

    async def _attach(self, inputs: AttestInputs, platform: Platform, predicate_type: str, envelope: bytes) -> str:
        """Push the envelope and its referrer manifest; the manifest's digest."""
        await self._put_blob(inputs.repository, statements.EMPTY_CONFIG)
        await self._put_blob(inputs.repository, envelope)
        body = statements.referrer_manifest(
            platform.descriptor, envelope, predicate_type, created=inputs.finished_on, build=inputs.build_uuid
        )
        digest = str(Digest.of(body))
        await self.registry.manifests.put(inputs.repository, digest, body, mt.OCI_MANIFEST, actor=ACTOR)
        return digest
