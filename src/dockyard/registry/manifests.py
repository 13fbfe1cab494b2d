"""Manifests and tags: push (validate, store, tag), get by tag or digest, delete (untag or remove)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import Insert, bindparam, delete, insert, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.core.digest import Digest
from dockyard.core.manifest import ParsedManifest, parse_manifest
from dockyard.core.names import namespace_of
from dockyard.db.statements import dialect_insert_for, prepared
from dockyard.errors import Conflict, Invalid, NotFound, QuotaExceeded
from dockyard.events.audit import audit_row, record_audit, record_audits
from dockyard.events.outbox import (
    MANIFEST_DELETED,
    MANIFEST_PUSHED,
    TAG_DELETED,
    TAG_UPDATED,
    event_row,
    record_event,
    record_events,
)
from dockyard.models import Manifest, ManifestReference, Repository, RepositoryBlob, Tag
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.immutability import GUARD, claim_tag_sync, guard, guard_from_row, refusal
from dockyard.registry.quotas import check_storage, record_refusal
from dockyard.registry.repositories import find_repository, repository_for_write_sync


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


_LINKED_BLOBS = (
    select(RepositoryBlob.digest)
    .where(
        RepositoryBlob.repository_id == bindparam("repo_id"),
        RepositoryBlob.digest.in_(bindparam("digests", expanding=True)),
    )
    .with_for_update(read=True)
)
_CHILD_MANIFESTS = (
    select(Manifest.digest)
    .where(Manifest.repository_id == bindparam("repo_id"), Manifest.digest.in_(bindparam("digests", expanding=True)))
    .with_for_update(read=True)
)
_INSERT_REFERENCES = insert(ManifestReference)
_PUSHED = (
    update(Repository)
    .where(Repository.id == bindparam("repo_id"))
    .values(last_pushed_at=bindparam("p_now"), updated_at=bindparam("p_now"))
)


def _insert_manifest_statement(dialect: str) -> Insert:
    return (
        dialect_insert_for(dialect, Manifest)
        .on_conflict_do_nothing()
        .values(
            repository_id=bindparam("p_repo_id"),
            digest=bindparam("p_digest"),
            media_type=bindparam("p_media_type"),
            artifact_type=bindparam("p_artifact_type"),
            subject_digest=bindparam("p_subject_digest"),
            annotations=bindparam("p_annotations"),
            size=bindparam("p_size"),
            content=bindparam("p_content"),
            created_at=bindparam("p_now"),
        )
        .returning(Manifest.id)
    )


def _set_tag_statement(dialect: str) -> Insert:
    upsert = dialect_insert_for(dialect, Tag).values(
        repository_id=bindparam("p_repo_id"),
        name=bindparam("p_tag"),
        manifest_id=bindparam("p_manifest_id"),
        updated_at=bindparam("p_now"),
        pushed_by=bindparam("p_pushed_by"),
    )
    return upsert.on_conflict_do_update(
        index_elements=[Tag.repository_id, Tag.name],
        set_={
            "manifest_id": upsert.excluded.manifest_id,
            "updated_at": upsert.excluded.updated_at,
            "pushed_by": upsert.excluded.pushed_by,
        },
        where=Tag.manifest_id != upsert.excluded.manifest_id,
    ).returning(Tag.name)


def _missing(conn: Connection, repo_id: int, parsed: ParsedManifest) -> list[dict[str, str]]:
    """Descriptors the manifest needs that the repository lacks (subjects and foreign layers excepted).

    The rows found are share-locked until the transaction ends, so garbage collection (which takes exclusive
    locks and re-checks references) cannot remove a blob link or child manifest this manifest is about to use.
    """
    missing: list[dict[str, str]] = []
    blob_digests = {str(d.digest) for d in parsed.blob_references()}
    if blob_digests:
        params = {"repo_id": repo_id, "digests": sorted(blob_digests)}
        present = set(conn.execute(_LINKED_BLOBS, params).scalars())
        missing.extend({"digest": d, "kind": "blob"} for d in sorted(blob_digests - present))
    child_digests = {str(d.digest) for d in parsed.children}
    if child_digests:
        params = {"repo_id": repo_id, "digests": sorted(child_digests)}
        present = set(conn.execute(_CHILD_MANIFESTS, params).scalars())
        missing.extend({"digest": d, "kind": "manifest"} for d in sorted(child_digests - present))
    return missing


_EXISTING_MANIFEST = (
    select(Manifest.id)
    .where(Manifest.repository_id == bindparam("repo_id"), Manifest.digest == bindparam("digest"))
    .with_for_update(read=True)
)


def _store(conn: Connection, repo_id: int, digest: str, body: bytes, parsed: ParsedManifest) -> tuple[int, bool]:
    """Insert the manifest and its references unless present; return its id and whether this call stored it.

    The insert comes first (``ON CONFLICT DO NOTHING``): a new manifest costs one statement. An existing row is
    then share-locked (garbage collection cannot delete it before this push tags it); if collection deleted it
    between the two, the insert is tried again. A concurrent push of the same manifest is no error: the insert
    does nothing and the row the other push stored is used.
    """
    values = {
        "p_repo_id": repo_id,
        "p_digest": digest,
        "p_media_type": parsed.media_type,
        "p_artifact_type": parsed.referrer_artifact_type,
        "p_subject_digest": str(parsed.subject.digest) if parsed.subject else None,
        "p_annotations": json.dumps(parsed.annotations) if parsed.annotations else None,
        "p_size": len(body),
        "p_content": body,
        "p_now": utcnow(),
    }
    for _ in range(3):
        inserted: int | None = conn.execute(prepared(conn, _insert_manifest_statement), values).scalar_one_or_none()
        if inserted is not None:
            break
        existing = conn.execute(_EXISTING_MANIFEST, {"repo_id": repo_id, "digest": digest}).scalar_one_or_none()
        if existing is not None:
            return int(existing), False
    else:
        raise Conflict("manifest", "manifest is being garbage-collected; retry", {"digest": digest})
    manifest_id = inserted
    refs = {("blob", str(d.digest)) for d in parsed.blob_references()}
    refs |= {("manifest", str(d.digest)) for d in parsed.children}
    if parsed.subject is not None:
        refs.add(("subject", str(parsed.subject.digest)))
    if refs:
        conn.execute(
            _INSERT_REFERENCES, [{"manifest_id": manifest_id, "kind": kind, "digest": d} for kind, d in sorted(refs)]
        )
    return manifest_id, True


def _set_tag(conn: Connection, repo_id: int, tag: str, manifest_id: int, pushed_by: str | None) -> bool:
    """Point ``tag`` at the manifest in one statement (an upsert that changes nothing if the tag already points
    there). Returns True if the tag changed."""
    params = {
        "p_repo_id": repo_id,
        "p_tag": tag,
        "p_manifest_id": manifest_id,
        "p_now": utcnow(),
        "p_pushed_by": pushed_by,
    }
    return conn.execute(prepared(conn, _set_tag_statement), params).first() is not None


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
        *,
        require_references: bool = True,
        create: bool = True,
    ) -> PushResult:
        """Validate and store a manifest; tag it with ``reference`` (if a tag) and ``tags``. A pull-through cache
        stores what its upstream served without ``require_references``: the blobs and child manifests a cached
        manifest names are fetched when they are first pulled. ``create=False``: only into an existing repository
        (what the server attaches of its own accord)."""
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

        settings = self.ctx.settings

        def work(conn: Connection) -> None:
            # The look-up brings the repository's immutability rules: no extra statement when it has none.
            row = conn.execute(GUARD, {"name": name}).first()
            guarded = None if row is None else guard_from_row(conn, name, row)
            if row is None:  # a new repository has no tags yet, so no tag of it can be moved
                repo_id = repository_for_write_sync(
                    conn,
                    name,
                    actor,
                    create=create,
                    default_private=settings.default_private,
                    open_server=settings.open,
                    source_ip=source_ip,
                )
            else:
                repo_id = int(row.id)
            missing = _missing(conn, repo_id, parsed) if require_references else []
            if missing:
                raise Invalid("manifest_blob", "manifest references a manifest or blob unknown to registry", missing)
            manifest_id, new = _store(conn, repo_id, digest, body, parsed)
            if new:
                check_storage(conn, namespace_of(name))  # a namespace past its limit takes no new image
            events = [
                event_row(
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
                        "new": new,  # False: the repository held this manifest; the push only tagged it
                    },
                )
            ]
            now = utcnow()
            conn.execute(_PUSHED, {"repo_id": repo_id, "p_now": now})
            namespace = namespace_of(name)
            record_audits(
                conn,
                [
                    audit_row(
                        namespace, action, actor=actor, target=target, source_ip=source_ip, data={"digest": digest}
                    )
                    for action, target in [("repo.tag.push", f"{name}:{t}") for t in all_tags]
                    or [("repo.manifest.push", f"{name}@{digest}")]
                ],
            )
            for tag in sorted(all_tags):  # tag rows are locked in name order by every writer: no deadlocks
                rule = guarded.match(tag) if guarded is not None and guarded.rules else None
                if rule is not None and guarded is not None:
                    changed = claim_tag_sync(conn, guarded, tag, manifest_id, actor, rule)
                else:
                    changed = _set_tag(conn, repo_id, tag, manifest_id, actor)
                if changed:
                    events.append(
                        event_row(
                            TAG_UPDATED,
                            repository=name,
                            tag=tag,
                            digest=digest,
                            media_type=parsed.media_type,
                            actor=actor,
                        )
                    )
            record_events(conn, events)

        try:
            await self.ctx.db.run_unit(work)
        except QuotaExceeded as exc:
            await record_refusal(self.ctx.db, exc, repository=name, actor=actor)
            raise
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

    async def delete(
        self,
        name: str,
        reference: str,
        actor: str | None = None,
        source_ip: str = "",
        *,
        expect_digest: str | None = None,
    ) -> None:
        """By tag: untag. By digest: remove the manifest and every tag pointing at it. ``expect_digest`` (by tag):
        untag only if the tag still points at that manifest, else ``Conflict("tag")`` (a planned deletion that a
        push overtook)."""

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
                if expect_digest is not None and row[0] != expect_digest:
                    raise Conflict("tag", "the tag was moved to another manifest", {"tag": reference})
                rules = await guard(conn, name)
                rule = rules.match(reference) if rules is not None else None
                if rule is not None:
                    raise refusal(name, reference, rule, "deleted")
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
            rules = await guard(conn, name) if tags else None
            for tag in tags:
                rule = rules.match(tag) if rules is not None else None
                if rule is not None:
                    raise refusal(name, tag, rule, "deleted (with the manifest it names)")
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
