"""Repository views in Docker Hub's shapes: the list entry (``RepositorySummary``) and the detail
(``RepositoryView``), and the batched queries that fill in what a ``repositories`` row does not hold (media and
content types of its manifests, storage size)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.permissions import Facts, Level
from dockyard.models import Blob, Manifest, RepositoryBlob
from dockyard.repos.access import RepositoryRecord, content_type_of


@dataclass(frozen=True, slots=True)
class RepositoryPermissions:
    read: bool
    write: bool
    admin: bool

    @classmethod
    def of(cls, level: Level) -> RepositoryPermissions:
        return cls(level >= Level.READ, level >= Level.WRITE, level >= Level.ADMIN)


@dataclass(frozen=True, slots=True)
class ImmutableTagsSettings:
    enabled: bool = False
    rules: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RepositorySummary:
    """An entry of ``GET /v2/namespaces/{ns}/repositories``. ``full_name`` (the registry name, ``ns/name``)
    is not a Hub field; it is there for links."""

    name: str
    namespace: str
    full_name: str
    repository_type: str
    status: int
    status_description: str
    description: str
    is_private: bool
    star_count: int
    pull_count: int
    last_updated: datetime
    last_modified: datetime
    date_registered: datetime
    affiliation: str
    media_types: tuple[str, ...]
    content_types: tuple[str, ...]
    categories: tuple[str, ...]
    storage_size: int


@dataclass(frozen=True, slots=True)
class RepositoryView(RepositorySummary):
    """``GET /v2/namespaces/{ns}/repositories/{repo}``: the list entry and the caller-specific details."""

    user: str
    is_automated: bool
    collaborator_count: int
    hub_user: str
    has_starred: bool
    full_description: str
    permissions: RepositoryPermissions
    immutable_tags_settings: ImmutableTagsSettings
    source: str | None


@dataclass(frozen=True, slots=True)
class ContentFacts:
    media_types: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()
    storage_size: int = 0


async def content_facts(conn: AsyncConnection, repo_ids: Sequence[int]) -> dict[int, ContentFacts]:
    """Media types, content types and storage size of each repository: two grouped queries per page."""
    if not repo_ids:
        return {}
    ids = sorted(set(repo_ids))
    kinds = await conn.execute(
        select(Manifest.repository_id, Manifest.media_type, Manifest.artifact_type)
        .where(Manifest.repository_id.in_(ids), Manifest.subject_digest.is_(None))
        .group_by(Manifest.repository_id, Manifest.media_type, Manifest.artifact_type)
    )
    media: dict[int, set[str]] = defaultdict(set)
    content: dict[int, set[str]] = defaultdict(set)
    for repo_id, media_type, artifact_type in kinds:
        media[repo_id].add(media_type)
        content[repo_id].add(content_type_of(media_type, artifact_type))
    size_rows = await conn.execute(
        select(RepositoryBlob.repository_id, func.coalesce(func.sum(Blob.size), 0))
        .join(Blob, Blob.digest == RepositoryBlob.digest)
        .where(RepositoryBlob.repository_id.in_(ids))
        .group_by(RepositoryBlob.repository_id)
    )
    sizes = {int(repo_id): int(total) for repo_id, total in size_rows}
    return {
        repo_id: ContentFacts(
            tuple(sorted(media.get(repo_id, ()))), tuple(sorted(content.get(repo_id, ()))), int(sizes.get(repo_id, 0))
        )
        for repo_id in ids
    }


def affiliation(facts: Facts, namespace: str) -> str:
    """The caller's relation to the namespace, as Docker Hub reports it ("" for none)."""
    if namespace in facts.owned_namespaces:
        return "owner"
    if namespace in facts.member_orgs:
        return "member"
    return ""


def summary(record: RepositoryRecord, content: ContentFacts, affiliated: str) -> RepositorySummary:
    return RepositorySummary(
        name=record.short_name,
        namespace=record.namespace,
        full_name=record.name,
        repository_type="image",
        status=1,
        status_description="active",
        description=record.description,
        is_private=record.is_private,
        star_count=record.star_count,
        pull_count=record.pull_count,
        last_updated=record.last_updated,
        last_modified=record.last_modified,
        date_registered=record.created_at,
        affiliation=affiliated,
        media_types=content.media_types,
        content_types=content.content_types,
        categories=(),
        storage_size=content.storage_size,
    )


def detail(
    record: RepositoryRecord,
    content: ContentFacts,
    affiliated: str,
    *,
    level: Level,
    has_starred: bool,
    collaborator_count: int,
    immutable_tags: ImmutableTagsSettings | None = None,
    is_automated: bool = False,
) -> RepositoryView:
    base = summary(record, content, affiliated)
    inherited: dict[str, Any] = {f.name: getattr(base, f.name) for f in fields(RepositorySummary)}
    return RepositoryView(
        **inherited,
        user=record.namespace,
        is_automated=is_automated,
        collaborator_count=collaborator_count,
        hub_user=record.namespace,
        has_starred=has_starred,
        full_description=record.full_description,
        permissions=RepositoryPermissions.of(level),
        immutable_tags_settings=immutable_tags or ImmutableTagsSettings(),
        source=None,
    )
