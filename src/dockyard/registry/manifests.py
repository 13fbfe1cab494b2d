"""Manifests and tags: push (validate, store, tag), get by tag or digest, delete (untag or remove)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.digest import Digest
from dockyard.core.manifest import ParsedManifest, parse_manifest
from dockyard.core.names import namespace_of
from dockyard.db.statements import insert_or_nothing
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.events.outbox import MANIFEST_DELETED, MANIFEST_PUSHED, TAG_DELETED, TAG_UPDATED, record_event
from dockyard.models import Manifest, ManifestReference, Repository, RepositoryBlob, Tag
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.repositories import ensure_repository, find_repository


@dataclass(frozen=True, slots=True)
class StoredManifest:
    digest: str
    media_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    subject: str | None
    tags: tuple[str, ...]


# Hot-path statements are built once: bound parameters keep SQLAlchemy's compiled-statement cache warm and
# skip rebuilding the expression tree on every request.
_REPOSITORY_ID = select(Repository.id).where(Repository.name == bindparam("name")).scalar_subquery()
# Both resolve the repository first, then use the (repository_id, name) and (repository_id, digest) keys, so the
# cost stays one index probe each however many manifests and tags a repository has.
_BY_TAG = (
    select(Manifest.digest, Manifest.media_type, Manifest.content)
    .select_from(Tag)
    .join(Manifest, Manifest.id == Tag.manifest_id)
    .where(Tag.repository_id == _REPOSITORY_ID, Tag.name == bindparam("reference"))
)
_BY_DIGEST = select(Manifest.digest, Manifest.media_type, Manifest.content).where(
    Manifest.repository_id == _REPOSITORY_ID, Manifest.digest == bindparam("reference")
)


def _manifest_unknown(reference: str) -> NotFound:
    return NotFound("manifest", "manifest unknown to registry", {"reference": reference[:200]})


async def _missing(conn: AsyncConnection, repo_id: int, parsed: ParsedManifest) -> list[dict[str, str]]:
    """Descriptors the manifest needs that the repository lacks (subjects and foreign layers excepted).

    The rows found are share-locked until the transaction ends, so garbage collection (which takes exclusive
    locks and re-checks references) cannot remove a blob link or child manifest this manifest is about to use.
    """
    missing: list[dict[str, str]] = []
    blob_digests = {str(d.digest) for d in parsed.blob_references()}
    if blob_digests:
        query = select(RepositoryBlob.digest).where(
            RepositoryBlob.repository_id == repo_id, RepositoryBlob.digest.in_(blob_digests)
        )
        present = set((await conn.execute(query.with_for_update(read=True))).scalars())
        missing.extend({"digest": d, "kind": "blob"} for d in sorted(blob_digests - present))
    child_digests = {str(d.digest) for d in parsed.children}
    if child_digests:
        query = select(Manifest.digest).where(Manifest.repository_id == repo_id, Manifest.digest.in_(child_digests))
        present = set((await conn.execute(query.with_for_update(read=True))).scalars())
        missing.extend({"digest": d, "kind": "manifest"} for d in sorted(child_digests - present))
    return missing


async def _store(conn: AsyncConnection, repo_id: int, digest: str, body: bytes, parsed: ParsedManifest) -> int:
    """Insert the manifest and its references unless present; return its id.

    An existing row is share-locked (garbage collection cannot delete it before this push tags it). A concurrent
    push of the same manifest is no error: the insert does nothing and the row the other push stored is used.
    """
    existing_query = (
        select(Manifest.id)
        .where(Manifest.repository_id == repo_id, Manifest.digest == digest)
        .with_for_update(read=True)
    )
    for _ in range(3):
        existing = (await conn.execute(existing_query)).scalar_one_or_none()
        if existing is not None:
            return existing
        result = await conn.execute(
            insert_or_nothing(conn, Manifest)
            .values(
                repository_id=repo_id,
                digest=digest,
                media_type=parsed.media_type,
                artifact_type=parsed.referrer_artifact_type,
                subject_digest=str(parsed.subject.digest) if parsed.subject else None,
                annotations=json.dumps(parsed.annotations) if parsed.annotations else None,
                size=len(body),
                content=body,
                created_at=utcnow(),
            )
            .returning(Manifest.id)
        )
        inserted: int | None = result.scalar_one_or_none()
        if inserted is not None:
            break
    else:
        raise Conflict("manifest", "manifest is being garbage-collected; retry", {"digest": digest})
    manifest_id = inserted
    refs = {("blob", str(d.digest)) for d in parsed.blob_references()}
    refs |= {("manifest", str(d.digest)) for d in parsed.children}
    if parsed.subject is not None:
        refs.add(("subject", str(parsed.subject.digest)))
    if refs:
        await conn.execute(
            insert(ManifestReference),
            [{"manifest_id": manifest_id, "kind": kind, "digest": d} for kind, d in sorted(refs)],
        )
    return manifest_id


async def _set_tag(conn: AsyncConnection, repo_id: int, tag: str, manifest_id: int, pushed_by: str | None) -> bool:
    """Point ``tag`` at the manifest. Returns True if the tag changed."""
    current = (
        await conn.execute(select(Tag.manifest_id).where(Tag.repository_id == repo_id, Tag.name == tag))
    ).scalar_one_or_none()
    if current == manifest_id:
        return False
    if current is None:
        try:
            async with conn.begin_nested():
                await conn.execute(
                    insert(Tag).values(
                        repository_id=repo_id,
                        name=tag,
                        manifest_id=manifest_id,
                        updated_at=utcnow(),
                        pushed_by=pushed_by,
                    )
                )
            return True
        except IntegrityError:
            pass
    await conn.execute(
        update(Tag)
        .where(Tag.repository_id == repo_id, Tag.name == tag)
        .values(manifest_id=manifest_id, updated_at=utcnow(), pushed_by=pushed_by)
    )
    return True


class ManifestService:
    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def put(
        self,
        name: str,
        reference: str,
        body: bytes,
        content_type: str,
        tags: tuple[str, ...] = (),
        actor: str | None = None,
        source_ip: str = "",
    ) -> PushResult:
        """Validate and store a manifest; tag it with ``reference`` (if a tag) and ``tags``."""
        parsed = parse_manifest(body, content_type)
        if ":" in reference:
            wanted = Digest.parse(reference)
            digest = str(Digest.of(body, wanted.algorithm))
            if digest != reference:
                raise Invalid(
                    "digest",
                    "manifest digest does not match the reference",
                    {"reference": reference, "actual": digest},
                )
            all_tags = tags
        else:
            digest = str(Digest.of(body))
            all_tags = (reference, *[t for t in tags if t != reference])
        subject = str(parsed.subject.digest) if parsed.subject else None

        async def work(conn: AsyncConnection) -> None:
            repo_id = await ensure_repository(
                conn,
                name,
                actor,
                default_private=self.ctx.settings.default_private,
                open_server=self.ctx.settings.open,
                source_ip=source_ip,
            )
            missing = await _missing(conn, repo_id, parsed)
            if missing:
                raise Invalid("manifest_blob", "manifest references a manifest or blob unknown to registry", missing)
            manifest_id = await _store(conn, repo_id, digest, body, parsed)
            await record_event(
                conn,
                MANIFEST_PUSHED,
                repository=name,
                digest=digest,
                media_type=parsed.media_type,
                actor=actor,
                tag=all_tags[0] if all_tags else None,
                payload={
                    "size": len(body),
                    "tags": list(all_tags),
                    "subject": subject,
                    "artifactType": parsed.referrer_artifact_type,
                },
            )
            now = utcnow()
            await conn.execute(
                update(Repository).where(Repository.id == repo_id).values(last_pushed_at=now, updated_at=now)
            )
            namespace = namespace_of(name)
            for action, target in [("repo.tag.push", f"{name}:{t}") for t in all_tags] or [
                ("repo.manifest.push", f"{name}@{digest}")
            ]:
                await record_audit(
                    conn, namespace, action, actor=actor, target=target, source_ip=source_ip, data={"digest": digest}
                )
            for tag in sorted(all_tags):  # tag rows are locked in name order by every writer: no deadlocks
                if await _set_tag(conn, repo_id, tag, manifest_id, actor):
                    await record_event(
                        conn,
                        TAG_UPDATED,
                        repository=name,
                        tag=tag,
                        digest=digest,
                        media_type=parsed.media_type,
                        actor=actor,
                    )

        await self.ctx.db.run_write(work)
        return PushResult(digest, subject, all_tags)

    async def get(self, name: str, reference: str) -> StoredManifest:
        """By tag or digest. Raises NotFound("manifest"), or NotFound("repository") if the repository is
        unknown."""
        query = _BY_DIGEST if ":" in reference else _BY_TAG
        async with self.ctx.db.read() as conn:
            row = (await conn.execute(query, {"name": name, "reference": reference})).first()
            if row is None:
                if await find_repository(conn, name) is None:
                    raise NotFound("repository", "repository name not known to registry", {"name": name})
                raise _manifest_unknown(reference)
        return StoredManifest(row[0], row[1], row[2])

    async def delete(self, name: str, reference: str, actor: str | None = None, source_ip: str = "") -> None:
        """By tag: untag. By digest: remove the manifest and every tag pointing at it."""

        async def work(conn: AsyncConnection) -> None:
            repo_id = await find_repository(conn, name)
            if repo_id is None:
                raise NotFound("repository", "repository name not known to registry", {"name": name})
            if ":" not in reference:
                row = (
                    await conn.execute(
                        select(Manifest.digest)
                        .join(Tag, Tag.manifest_id == Manifest.id)
                        .where(Tag.repository_id == repo_id, Tag.name == reference)
                    )
                ).first()
                if row is None:
                    raise _manifest_unknown(reference)
                await conn.execute(delete(Tag).where(Tag.repository_id == repo_id, Tag.name == reference))
                await record_event(conn, TAG_DELETED, repository=name, tag=reference, digest=row[0], actor=actor)
                await record_audit(
                    conn,
                    namespace_of(name),
                    "repo.tag.delete",
                    actor=actor,
                    target=f"{name}:{reference}",
                    source_ip=source_ip,
                    data={"digest": row[0]},
                )
                return
            # Lock the manifest before its tags, in the order a concurrent PUT of it takes them (manifest, then
            # tag rows): the other order deadlocks on PostgreSQL.
            manifest = (
                await conn.execute(
                    select(Manifest.id, Manifest.media_type)
                    .where(Manifest.repository_id == repo_id, Manifest.digest == reference)
                    .with_for_update()
                )
            ).first()
            if manifest is None:
                raise _manifest_unknown(reference)
            tags = (
                (
                    await conn.execute(
                        select(Tag.name).where(Tag.manifest_id == manifest[0]).order_by(Tag.name).with_for_update()
                    )
                )
                .scalars()
                .all()
            )
            await conn.execute(delete(Tag).where(Tag.manifest_id == manifest[0]))
            await conn.execute(delete(ManifestReference).where(ManifestReference.manifest_id == manifest[0]))
            await conn.execute(delete(Manifest).where(Manifest.id == manifest[0]))
            for tag in tags:
                await record_event(conn, TAG_DELETED, repository=name, tag=tag, digest=reference, actor=actor)
            await record_event(
                conn,
                MANIFEST_DELETED,
                repository=name,
                digest=reference,
                media_type=manifest[1],
                actor=actor,
                payload={"tags": list(tags)},
            )
            await record_audit(
                conn,
                namespace_of(name),
                "repo.manifest.delete",
                actor=actor,
                target=f"{name}@{reference}",
                source_ip=source_ip,
                data={"tags": list(tags)},
            )

        await self.ctx.db.run_write(work)
