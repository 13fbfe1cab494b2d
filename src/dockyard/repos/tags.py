"""Tags as the Hub shows them: list (filter, order, pages), one tag, delete — each with the platform images
behind it (``dockyard.repos.images``)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, func, select

from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.core.names import validate_tag
from dockyard.core.paging import Page, PageRequest
from dockyard.errors import Invalid, NotFound
from dockyard.models import Account, Manifest, Tag
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.registry.manifests import ManifestService
from dockyard.repos.access import LIKE_ESCAPE, content_type_of, like_contains, resolve
from dockyard.repos.images import ImageResolver, ManifestRecord, TagImage, described_content


@dataclass(frozen=True, slots=True)
class TagView:
    """A tag in Docker Hub's shape. ``creator`` and ``last_updater`` are the account id of the last pusher
    (Dockyard keeps no separate first pusher); ``id`` is stable for a (repository, tag name)."""

    id: int
    name: str
    creator: int | None
    last_updated: datetime
    last_updater: int | None
    last_updater_username: str | None
    repository: int
    full_size: int
    v2: bool
    status: str
    tag_status: str
    tag_last_pulled: datetime | None
    tag_last_pushed: datetime
    media_type: str
    content_type: str
    digest: str
    images: tuple[TagImage, ...]


_ORDER_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": Tag.name.expression,
    "last_updated": Tag.updated_at.expression,
}
ORDERINGS = frozenset({*_ORDER_COLUMNS, *(f"-{key}" for key in _ORDER_COLUMNS)})
DEFAULT_ORDERING = "-last_updated"  # newest first, as Docker Hub lists tags


def order_by(ordering: str | None) -> list[ColumnElement[Any]]:
    key = ordering or DEFAULT_ORDERING
    if key not in ORDERINGS:
        raise Invalid("request", f"ordering must be one of {sorted(ORDERINGS)}", {"ordering": key[:50]})
    field = key.removeprefix("-")
    column = _ORDER_COLUMNS[field]
    primary = column.desc() if key.startswith("-") else column.asc()
    return [primary] if field == "name" else [primary, Tag.name.asc()]


def tag_id(repository_id: int, name: str) -> int:
    """A stable numeric id for a tag (48 bits: exact in JavaScript numbers too)."""
    return int.from_bytes(hashlib.sha256(f"{repository_id}/{name}".encode()).digest()[:6], "big")


# Tags of one repository (``repo_id``) with their manifests and the pushers' account ids.
_TAGS = (
    select(
        Tag.name,
        Tag.updated_at,
        Tag.pushed_by,
        Tag.last_pulled_at,
        Manifest.digest,
        Manifest.media_type,
        Manifest.artifact_type,
        described_content(),
        Manifest.created_at,
        Account.id.label("pusher_id"),
    )
    .select_from(Tag)
    .join(Manifest, Manifest.id == Tag.manifest_id)
    .outerjoin(Account, Account.name == Tag.pushed_by)
    .where(Tag.repository_id == bindparam("repo_id"))
)


def _full_size(images: tuple[TagImage, ...]) -> int:
    """What Docker Hub shows as a tag's size: its linux/amd64 image's, else its first image's."""
    for image in images:
        if image.os == "linux" and image.architecture == "amd64":
            return image.size
    return images[0].size if images else 0


def _tag_not_found(tag: str) -> NotFound:
    return NotFound("tag", "tag not found", {"tag": tag[:200]})


class TagService:
    """Hub operations on tags. ``images`` caches parsed image configs; share one per process."""

    def __init__(self, ctx: RegistryContext, images: ImageResolver | None = None) -> None:
        self.ctx = ctx
        self.images = images or ImageResolver(BlobService(ctx))

    async def list_tags(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        page: PageRequest,
        *,
        name_filter: str | None = None,
        ordering: str | None = None,
    ) -> Page[TagView]:
        """Tags of a repository the actor may see (``ordering``: ``name``, ``last_updated``, ``-`` for
        descending; default newest first). ``name_filter`` matches a part of the name, ignoring case."""
        order = order_by(ordering)
        async with self.ctx.db.read(consistent=True) as conn:
            record, _ = await resolve(conn, actor, namespace, name)
            where = [Tag.repository_id == record.id]
            if name_filter:
                where.append(func.lower(Tag.name).like(like_contains(name_filter.lower()), escape=LIKE_ESCAPE))
            total = int((await conn.execute(select(func.count()).select_from(Tag).where(*where))).scalar_one())
            rows = (
                await conn.execute(
                    _TAGS.where(*where[1:]).order_by(*order).limit(page.page_size).offset(page.offset),
                    {"repo_id": record.id},
                )
            ).all()
            plan = await self.images.prepare(conn, record.id, self._manifests(rows))
        images = await self.images.finish(plan)
        return Page([self._view(record.id, row, images) for row in rows], total, page)

    async def get_tag(self, actor: Principal, namespace: str, name: str, tag: str) -> TagView:
        """Raises ``NotFound("repository")`` or ``NotFound("tag")``."""
        async with self.ctx.db.read(consistent=True) as conn:
            record, _ = await resolve(conn, actor, namespace, name)
            try:
                validate_tag(tag)
            except Invalid:
                raise _tag_not_found(tag) from None
            row = (await conn.execute(_TAGS.where(Tag.name == tag), {"repo_id": record.id})).first()
            if row is None:
                raise _tag_not_found(tag)
            plan = await self.images.prepare(conn, record.id, self._manifests([row]))
        images = await self.images.finish(plan)
        return self._view(record.id, row, images)

    async def delete_tag(self, actor: Principal, namespace: str, name: str, tag: str, *, source_ip: str = "") -> None:
        """Untag (the manifest stays, as a registry ``DELETE /v2/<name>/manifests/<tag>``); admin level, the
        registry's rule for deletes. Raises ``NotFound("repository"|"tag")``, ``Denied("repository")``."""
        async with self.ctx.db.read() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.ADMIN)
        try:
            validate_tag(tag)
        except Invalid:
            raise _tag_not_found(tag) from None
        try:
            await ManifestService(self.ctx).delete(
                record.name, tag, actor=actor.audit_name or None, source_ip=source_ip
            )
        except NotFound as exc:
            if exc.subject == "manifest":
                raise _tag_not_found(tag) from None
            raise

    @staticmethod
    def _manifests(rows: Any) -> list[ManifestRecord]:
        return [ManifestRecord(row.digest, row.media_type, row.content, row.created_at) for row in rows]

    @staticmethod
    def _view(repo_id: int, row: Any, images: dict[str, tuple[TagImage, ...]]) -> TagView:
        pulled: datetime | None = row.last_pulled_at
        own = tuple(replace(image, last_pulled=pulled) for image in images.get(row.digest, ()))
        return TagView(
            id=tag_id(repo_id, row.name),
            name=row.name,
            creator=row.pusher_id,
            last_updated=row.updated_at,
            last_updater=row.pusher_id,
            last_updater_username=row.pushed_by,
            repository=repo_id,
            full_size=_full_size(own),
            v2=True,
            status="active",
            tag_status="active",
            tag_last_pulled=pulled,
            tag_last_pushed=row.updated_at,
            media_type=row.media_type,
            content_type=content_type_of(row.media_type, row.artifact_type),
            digest=row.digest,
            images=own,
        )
