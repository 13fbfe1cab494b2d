"""The trust policy at pull time: is this manifest signed by a key its namespace trusts, and what does the policy
say to do about it (serve, serve with a warning, refuse)?

Signatures are found where cosign and skopeo put them — the ``sha256-<hex>.sig`` tag of the same repository and
OCI 1.1 referrers (cosign signatures and Sigstore bundles) — and verified by ``dockyard.signing.verify``. A manifest
is also verified when an index that lists it is (a signed multi-platform image covers its platforms). Results are
cached per manifest and key set in ``signature_checks`` and, for a few seconds, in memory; changing a namespace's
keys, keyless identities or trusted root changes its version (``dockyard.trust.anchors``), so revoking a key takes
effect within ``CACHE_SECONDS``. Signatures,
attestations and SBOMs themselves are never refused: clients must be able to fetch them to verify.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.jsonparse import loads_limited
from dockyard.core.names import namespace_of
from dockyard.db.statements import insert_or_nothing
from dockyard.events.outbox import POLICY_VIOLATED, record_event
from dockyard.models import (
    Manifest,
    ManifestReference,
    Repository,
    RepositoryBlob,
    SignatureCheck,
    Tag,
    TrustPolicy,
)
from dockyard.models.base import utcnow
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.signing.formats import IMAGE_SIGNATURE_ARTIFACT_TYPES, is_signature_artifact, signature_tag
from dockyard.trust.anchors import CACHE_SECONDS, AnchorCache, Anchors, set_version

log = logging.getLogger("dockyard.trust")
MAX_SIGNATURES = 20  # signature manifests looked at per image
MAX_BLOB = 1024 * 1024
MODES = ("off", "warn", "enforce")


@dataclass(frozen=True, slots=True)
class Policy:
    mode: str
    exempt: tuple[str, ...]
    scope: str  # the repository or namespace whose row decided


@dataclass(frozen=True, slots=True)
class Decision:
    mode: str
    verified: bool | None  # None: not checked (policy off, exempt, or a signature artifact itself)
    message: str = ""

    @property
    def refuse(self) -> bool:
        return self.mode == "enforce" and self.verified is False

    @property
    def warn(self) -> bool:
        return self.mode == "warn" and self.verified is False


OFF = Decision("off", None)


class TrustChecker:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx
        self.blobs = BlobService(ctx)
        self._policies: dict[str, tuple[float, dict[str, Policy]]] = {}
        self.anchors = AnchorCache(ctx.db, ctx.settings.sigstore_trusted_root)
        self._verdicts: dict[tuple[str, str, str], tuple[float, bool]] = {}
        self._warned: dict[tuple[str, str, str], float] = {}

    # -- cached reads -----------------------------------------------------------------------------------------

    async def _namespace_policies(self, namespace: str) -> dict[str, Policy]:
        cached = self._policies.get(namespace)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        async with self.ctx.db.read() as conn:
            rows = (await conn.execute(select(TrustPolicy).where(TrustPolicy.namespace == namespace))).all()
        policies = {
            row.repository: Policy(row.mode, tuple(json.loads(row.exempt or "[]")), row.repository or namespace)
            for row in rows
        }
        self._policies[namespace] = (now + CACHE_SECONDS, policies)
        return policies

    async def policy(self, repository: str) -> Policy:
        policies = await self._namespace_policies(namespace_of(repository))
        return policies.get(repository) or policies.get("") or Policy("off", (), repository)

    # -- the decision -----------------------------------------------------------------------------------------

    async def decide(self, repository: str, reference: str, digest: str, media_type: str, content: bytes) -> Decision:
        policy = await self.policy(repository)
        if policy.mode == "off":
            return OFF
        tag = None if ":" in reference else reference
        if any(fnmatchcase(repository, p) or (tag and fnmatchcase(f"{repository}:{tag}", p)) for p in policy.exempt):
            return Decision(policy.mode, None)
        artifact_type, layer_types = _artifact_type(content)
        # Only a manifest whose every layer is a signature, attestation or SBOM is exempt: an image pushed under a
        # ".sig" tag or with a signature artifactType is still an image.
        if is_signature_artifact(media_type, artifact_type, tag, layer_media_types=layer_types):
            return Decision(policy.mode, None)
        verified = await self.verified(repository, digest)
        message = ""
        if not verified:
            namespace = namespace_of(repository)
            message = (
                f"{repository}@{digest} is not signed by a key that {namespace} trusts "
                f"(trust policy of {policy.scope}: {policy.mode})"
            )
        return Decision(policy.mode, verified, message)

    async def verified(self, repository: str, digest: str, depth: int = 0) -> bool:
        anchors = await self.anchors.get(namespace_of(repository))
        if not anchors:
            return False
        memo_key = (repository, digest, anchors.version)
        memo = self._verdicts.get(memo_key)
        now = time.monotonic()
        if memo is not None and memo[0] > now:
            return memo[1]
        results = await self.check(repository, digest, anchors)
        verified = any(r["verified"] for r in results)
        if not verified and depth == 0:
            for parent in await self._indexes_listing(repository, digest):
                if await self.verified(repository, parent, depth + 1):
                    verified = True
                    break
        if len(self._verdicts) > 50_000:
            self._verdicts.clear()
        self._verdicts[memo_key] = (now + CACHE_SECONDS, verified)
        return verified

    async def signatures(self, repository: str, digest: str) -> list[dict[str, Any]]:
        """Each signature of ``digest`` and whether it verifies with a key or keyless identity the namespace trusts
        (for the tag views of the Hub API); recorded in ``signature_checks``."""
        return await self.check(repository, digest, await self.anchors.get(namespace_of(repository)))

    async def signatures_of(self, repository: str, digests: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """``signatures`` of several manifests of one repository (a page of tags) in a few statements: the stored
        results stand for every manifest whose signatures, linked blobs and anchors are unchanged (what ``check``
        compares); the others are checked one by one."""
        anchors = await self.anchors.get(namespace_of(repository))
        wanted = sorted(set(digests))
        found: dict[str, list[dict[str, Any]]] = {digest: [] for digest in wanted}
        stale: list[str] = []
        async with self.ctx.db.read(consistent=True) as conn:
            repo_id = await _repository_id(conn, repository)
            if repo_id is None or not wanted:
                return found
            ids = await _manifest_ids(conn, repo_id, wanted)
            signatures = await _signature_manifests_of(conn, repo_id, wanted)
            payloads = {d: {b for _, _, c in sigs for b, _ in _layers(c)} for d, sigs in signatures.items()}
            linked = await _linked_blobs(conn, repository, set().union(*payloads.values()))
            stored = dict(
                (
                    await conn.execute(
                        select(SignatureCheck.manifest_id, SignatureCheck.keys_version).where(
                            SignatureCheck.manifest_id.in_(sorted(ids.values()))
                        )
                    )
                ).all()
            )
            current: dict[int, str] = {}
            for digest, manifest_id in ids.items():
                if stored.get(manifest_id) == _check_version(anchors, signatures[digest], payloads[digest] & linked):
                    current[manifest_id] = digest
                else:
                    stale.append(digest)
            if current:
                rows = await conn.execute(
                    select(SignatureCheck.manifest_id, SignatureCheck.results).where(
                        SignatureCheck.manifest_id.in_(sorted(current))
                    )
                )
                for manifest_id, results in rows:
                    found[current[manifest_id]] = json.loads(results)
        for digest in stale:
            found[digest] = await self.check(repository, digest, anchors)
        return found

    async def check(self, repository: str, digest: str, anchors: Anchors) -> list[dict[str, Any]]:
        """Every signature of ``digest`` in ``repository``, verified against ``anchors`` (cached in the DB per
        anchor set: a new or revoked key or identity gives a new version and a fresh check)."""
        async with self.ctx.db.read(consistent=True) as conn:
            repo_id = await _repository_id(conn, repository)
            manifest_id = None if repo_id is None else (await _manifest_ids(conn, repo_id, [digest])).get(digest)
            if repo_id is None or manifest_id is None:
                return []
            signatures = (await _signature_manifests_of(conn, repo_id, [digest]))[digest]
            # Only blobs the repository still links are read: a signature whose payload was deleted is one no
            # client can fetch to verify.
            linked = await _linked_blobs(conn, repository, {d for _, _, c in signatures for d, _ in _layers(c)})
            version = _check_version(anchors, signatures, linked)
            stored = (
                await conn.execute(select(SignatureCheck).where(SignatureCheck.manifest_id == manifest_id))
            ).first()
            if stored is not None and stored.keys_version == version:
                cached: list[dict[str, Any]] = json.loads(stored.results)
                return cached
        results: list[dict[str, Any]] = []
        from dockyard.signing.verify import verify_signature_manifest  # (cryptography: on the first verification)

        for _, media_type, content in signatures[:MAX_SIGNATURES]:
            blobs = await self._blobs(content, linked)
            reader = _reader(blobs)
            for result in verify_signature_manifest(content, media_type, digest, reader, anchors.keys, anchors.keyless):
                results.append(
                    {
                        "key_id": result.key_id,
                        "verified": result.verified,
                        "signed_at": result.signed_at.isoformat() if result.signed_at else None,
                        "format": result.format,
                        "identity": result.identity,
                        "reason": result.reason,
                    }
                )
        async with self.ctx.db.write() as conn:
            row = {
                "manifest_id": manifest_id,
                "keys_version": version,
                "verified": any(r["verified"] for r in results),
                "results": json.dumps(results),
                "checked_at": utcnow(),
            }
            inserted = await conn.execute(insert_or_nothing(conn, SignatureCheck).values(**row))
            if inserted.rowcount != 1:
                await conn.execute(
                    update(SignatureCheck).where(SignatureCheck.manifest_id == manifest_id).values(**row)
                )
        return results

    async def _blobs(self, content: bytes, linked: set[str]) -> dict[str, bytes]:
        """The small blobs a signature manifest's layers point at (payloads, bundles) that the repository links,
        read up front."""
        blobs: dict[str, bytes] = {}
        for digest, size in _layers(content):
            if digest not in linked or not 0 <= size <= MAX_BLOB:
                continue
            try:
                data = await self.blobs.read_small(digest, size)
            except Exception as exc:  # a missing or unreadable blob is an unverifiable signature
                log.info("signature blob %s unreadable: %s", digest, exc)
                continue
            if data is not None:  # None: missing or unreadable (logged)
                blobs[digest] = data
        return blobs

    async def _indexes_listing(self, repository: str, digest: str) -> list[str]:
        async with self.ctx.db.read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(Manifest.digest)
                        .join(ManifestReference, ManifestReference.manifest_id == Manifest.id)
                        .join(Repository, Repository.id == Manifest.repository_id)
                        .where(
                            Repository.name == repository,
                            ManifestReference.kind == "manifest",
                            ManifestReference.digest == digest,
                        )
                        .limit(10)
                    )
                )
                .scalars()
                .all()
            )
        return list(rows)

    async def record_violation(
        self, repository: str, reference: str, digest: str, actor: str | None, mode: str = "warn"
    ) -> None:
        """A ``policy_violation`` event for a pull of an unverified image — served anyway (``warn``) or refused
        (``enforce``) — at most one per image per 5 min per process, written only when it happens."""
        key = (repository, digest, mode)
        now = time.monotonic()
        if self._warned.get(key, 0.0) > now:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[key] = now + 300
        tag = None if ":" in reference else reference
        async with self.ctx.db.write() as conn:
            await record_event(
                conn,
                POLICY_VIOLATED,
                repository=repository,
                tag=tag,
                digest=digest,
                actor=actor,
                payload={"mode": mode, "reason": "not signed by a trusted key"},
            )

    def forget(self, namespace: str) -> None:
        """Drop this process's cached policy, keys and identities of ``namespace`` (after a change made here)."""
        self._policies.pop(namespace, None)
        self.anchors.forget(namespace)


def _layers(content: bytes) -> list[tuple[str, int]]:
    """(digest, size) of a signature manifest's first layers; none when it is not a manifest."""
    try:
        doc = loads_limited(content)
        layers = [layer for layer in doc.get("layers", []) if isinstance(layer, dict)][:MAX_SIGNATURES]
    except (ValueError, AttributeError, RecursionError):
        return []
    return [
        (layer["digest"], layer["size"])
        for layer in layers
        if isinstance(layer.get("digest"), str) and isinstance(layer.get("size"), int)
    ]


async def _linked_blobs(conn: AsyncConnection, repository: str, digests: set[str]) -> set[str]:
    if not digests:
        return set()
    repo_id = select(Repository.id).where(Repository.name == repository).scalar_subquery()
    rows = await conn.execute(
        select(RepositoryBlob.digest).where(
            RepositoryBlob.repository_id == repo_id, RepositoryBlob.digest.in_(sorted(digests))
        )
    )
    return set(rows.scalars().all())


def _reader(blobs: dict[str, bytes]) -> Callable[[str, int], bytes | None]:
    def read(digest: str, _size: int) -> bytes | None:
        return blobs.get(digest)

    return read


def _artifact_type(content: bytes) -> tuple[str | None, list[str]]:
    """The manifest's artifact type (``artifactType``, else its config's media type) and its layers' media types
    (an index has none)."""
    try:
        doc = loads_limited(content)
    except (ValueError, RecursionError):
        return None, []
    if not isinstance(doc, dict):
        return None, []
    layers = doc.get("layers")
    layer_types = [str(x.get("mediaType")) for x in layers if isinstance(x, dict)] if isinstance(layers, list) else []
    value = doc.get("artifactType")
    if isinstance(value, str):
        return value, layer_types
    config = doc.get("config")
    if isinstance(config, dict) and isinstance(config.get("mediaType"), str):
        return str(config["mediaType"]), layer_types
    return None, layer_types


async def _repository_id(conn: AsyncConnection, repository: str) -> int | None:
    return (await conn.execute(select(Repository.id).where(Repository.name == repository))).scalar_one_or_none()


def _check_version(anchors: Anchors, signatures: list[tuple[str, str, bytes]], linked: set[str]) -> str:
    """What a stored check is valid for: it stands while the anchors, the signature manifests and the payload
    blobs the repository links are the same."""
    return set_version([anchors.version, *(digest for digest, _, _ in signatures), *(f"blob:{d}" for d in linked)])


async def _manifest_ids(conn: AsyncConnection, repo_id: int, digests: list[str]) -> dict[str, int]:
    rows = await conn.execute(
        select(Manifest.digest, Manifest.id).where(Manifest.repository_id == repo_id, Manifest.digest.in_(digests))
    )
    return {str(row.digest): int(row.id) for row in rows}


async def _signature_manifests_of(
    conn: AsyncConnection, repo_id: int, digests: list[str]
) -> dict[str, list[tuple[str, str, bytes]]]:
    """(digest, media type, content) of the signature manifests of each of ``digests`` (one repository's): its
    ``.sig`` tag, then up to ``MAX_SIGNATURES`` referrers; in two statements."""
    found: dict[str, list[tuple[str, str, bytes]]] = {digest: [] for digest in digests}
    tags = {signature_tag(digest): digest for digest in digests}
    tagged = await conn.execute(
        select(Tag.name, Manifest.digest, Manifest.media_type, Manifest.content)
        .join(Tag, Tag.manifest_id == Manifest.id)
        .where(Tag.repository_id == repo_id, Tag.name.in_(sorted(tags)))
    )
    for tag_row in tagged:
        found[tags[tag_row.name]].append((tag_row.digest, tag_row.media_type, tag_row.content))
    referrers = await conn.execute(
        select(Manifest.subject_digest, Manifest.digest, Manifest.media_type, Manifest.content)
        .where(
            Manifest.repository_id == repo_id,
            Manifest.subject_digest.in_(digests),
            Manifest.artifact_type.in_(IMAGE_SIGNATURE_ARTIFACT_TYPES),
        )
        .order_by(Manifest.id)
    )
    counted: dict[str, int] = {}
    for row in referrers:
        subject = str(row.subject_digest)
        counted[subject] = counted.get(subject, 0) + 1
        if counted[subject] <= MAX_SIGNATURES:
            found[subject].append((row.digest, row.media_type, row.content))
    return found
