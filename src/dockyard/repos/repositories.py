"""Repositories as the Hub shows and manages them: list a namespace, read one, create, update (descriptions,
visibility), delete, and stars.

Every method takes the acting ``Principal``. A private repository the actor may not see answers
``NotFound("repository")`` exactly as a missing one does; a visible repository the actor may not change answers
``Denied("repository")``. Changes write their audit entries and domain events in their own transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.authorizer import NamespaceResource, Permission, namespace_exists, require
from dockyard.authz.permissions import Level, load_facts, visible_repositories
from dockyard.authz.principal import Principal
from dockyard.core.names import validate_name
from dockyard.core.paging import Page, PageRequest
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, Denied, Invalid, NotFound, QuotaExceeded, Unauthorized
from dockyard.models import Account, BuildLink, Repository, RepositoryPermission, Star
from dockyard.models.accounts import USER
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.namespaces import claim_namespace
from dockyard.registry.quotas import record_refusal
from dockyard.registry.repositories import (
    DoomedRepository,
    check_texts,
    create_repository,
    delete_repositories,
    drop_upload_objects,
    find_repository,
    update_repository,
)
from dockyard.repos.access import (
    LIKE_ESCAPE,
    SUMMARY_COLUMNS,
    RepositoryRecord,
    candidate_names,
    full_name,
    like_contains,
    like_prefix,
    resolve,
)
from dockyard.repos.immutability import repository_settings, store_repository_settings
from dockyard.repos.snapshots import (
    ImmutableTagsSettings,
    RepositorySummary,
    RepositoryView,
    affiliation,
    content_facts,
    detail,
    summary,
)

MIN_NAME_LENGTH = 2
MAX_NAME_LENGTH = 255

_ORDER_COLUMNS: dict[str, ColumnElement[Any]] = {
    "name": Repository.name.expression,
    "last_updated": func.coalesce(Repository.last_pushed_at, Repository.created_at),
    "pull_count": Repository.pull_count.expression,
}
ORDERINGS = frozenset({*_ORDER_COLUMNS, *(f"-{key}" for key in _ORDER_COLUMNS)})


def order_by(ordering: str | None) -> list[ColumnElement[Any]]:
    """Docker Hub's ``ordering`` (``name``, ``last_updated``, ``pull_count``, ``-`` for descending; default
    ``name``), with the unique name as the tie-breaker so that pages never overlap."""
    key = ordering or "name"
    if key not in ORDERINGS:
        raise Invalid("request", f"ordering must be one of {sorted(ORDERINGS)}", {"ordering": key[:50]})
    field = key.removeprefix("-")
    column = _ORDER_COLUMNS[field]
    primary = column.desc() if key.startswith("-") else column.asc()
    return [primary] if field == "name" else [primary, Repository.name.asc()]


def _short_name_matches(namespace: str, text: str) -> ColumnElement[bool]:
    """The repository's Hub name (the path after ``namespace``) contains ``text``."""
    prefix = f"{namespace}/"
    short = case(
        (Repository.name.like(like_prefix(prefix), escape=LIKE_ESCAPE), func.substr(Repository.name, len(prefix) + 1)),
        else_=Repository.name,
    )
    return short.like(like_contains(text.lower()), escape=LIKE_ESCAPE)


def _check_new_name(namespace: str, name: str) -> str:
    if not MIN_NAME_LENGTH <= len(name) <= MAX_NAME_LENGTH:
        raise Invalid("name", f"name must be {MIN_NAME_LENGTH} to {MAX_NAME_LENGTH} characters", {"name": name[:300]})
    return validate_name(full_name(namespace, name))


def _starrer(actor: Principal) -> int:
    if actor.is_anonymous:
        raise Unauthorized("credentials", "sign in to star repositories")
    if actor.kind != "user" or actor.account_id is None:
        raise Denied("star", "only users can star repositories")
    return actor.account_id


class RepositoryService:
    """Hub operations on repositories. Safe for concurrent use; holds no per-request state."""

    def __init__(self, ctx: RegistryContext) -> None:
        self.ctx = ctx

    async def list_namespace(
        self,
        actor: Principal,
        namespace: str,
        page: PageRequest,
        *,
        name_filter: str | None = None,
        ordering: str | None = None,
    ) -> Page[RepositorySummary]:
        """The repositories of ``namespace`` the actor may see. Raises ``NotFound("account")`` if no account owns
        the namespace (``library`` always exists) and the actor sees no repository in it."""
        order = order_by(ordering)
        async with self.ctx.db.read(consistent=True) as conn:
            facts = await load_facts(conn, actor)
            where = [Repository.namespace == namespace, visible_repositories(actor, facts)]
            if name_filter:
                where.append(_short_name_matches(namespace, name_filter))
            total = int((await conn.execute(select(func.count()).select_from(Repository).where(*where))).scalar_one())
            if total == 0 and not await namespace_exists(conn, namespace) and not await self._any(conn, where[:2]):
                raise NotFound("account", "namespace not found", {"namespace": namespace[:255]})
            rows = (
                await conn.execute(
                    select(*SUMMARY_COLUMNS).where(*where).order_by(*order).limit(page.page_size).offset(page.offset)
                )
            ).all()
            records = [RepositoryRecord.from_row(row) for row in rows]
            content = await content_facts(conn, [r.id for r in records])
        affiliated = affiliation(facts, namespace)
        return Page([summary(r, content[r.id], affiliated) for r in records], total, page)

    async def list_recent(self, actor: Principal, limit: int = 12) -> list[RepositorySummary]:
        """Public repositories the actor may see, most recently pushed (else created) first: the explore page."""
        async with self.ctx.db.read(consistent=True) as conn:
            facts = await load_facts(conn, actor)
            rows = (
                await conn.execute(
                    select(*SUMMARY_COLUMNS)
                    .where(Repository.is_private.is_(False), visible_repositories(actor, facts))
                    .order_by(*order_by("-last_updated"))
                    .limit(max(1, min(limit, 100)))
                )
            ).all()
            records = [RepositoryRecord.from_row(row) for row in rows]
            content = await content_facts(conn, [r.id for r in records])
        return [summary(r, content[r.id], affiliation(facts, r.namespace)) for r in records]

    @staticmethod
    async def _any(conn: AsyncConnection, where: list[ColumnElement[bool]]) -> bool:
        return (await conn.execute(select(Repository.id).where(*where).limit(1))).first() is not None

    async def get(self, actor: Principal, namespace: str, name: str) -> RepositoryView:
        """Raises ``NotFound("repository")`` if missing or not visible to the actor."""
        async with self.ctx.db.read(consistent=True) as conn:
            facts = await load_facts(conn, actor)
            record, level = await resolve(conn, actor, namespace, name, facts=facts)
            content = (await content_facts(conn, [record.id]))[record.id]
            starred = False
            if actor.account_id is not None:
                starred = (
                    await conn.execute(
                        select(Star.repository_id).where(
                            Star.repository_id == record.id, Star.account_id == actor.account_id
                        )
                    )
                ).first() is not None
            collaborators = (
                await conn.execute(
                    select(func.count())
                    .select_from(RepositoryPermission)
                    .join(Account, Account.id == RepositoryPermission.account_id)
                    .where(RepositoryPermission.repository_id == record.id, Account.kind == USER)
                )
            ).scalar_one()
            immutable = await repository_settings(conn, record.id)
            # Docker Hub's "automated build" mark: the repository is linked to a git repository (dockyard.builds)
            automated = (
                await conn.execute(select(BuildLink.id).where(BuildLink.repository == record.name))
            ).first() is not None
        return detail(
            record,
            content,
            affiliation(facts, record.namespace),
            level=level,
            has_starred=starred,
            collaborator_count=int(collaborators),
            immutable_tags=immutable,
            is_automated=automated,
        )

    async def create(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        *,
        description: str = "",
        full_description: str = "",
        is_private: bool | None = None,
        source_ip: str = "",
    ) -> RepositoryView:
        """Create an empty repository (namespace owners only). Raises ``Invalid("name"|"request")``,
        ``NotFound("account")`` for an unknown namespace, ``Denied("account")``, ``Conflict("repository")``
        if it exists. Visibility defaults to the namespace's setting, else the server's."""
        name_full = _check_new_name(namespace, name)
        check_texts(description, full_description)
        who = actor.audit_name or None

        async def work(conn: AsyncConnection) -> None:
            if actor.kind != "open":  # an --open server keeps no accounts: any namespace may get repositories
                await require(
                    conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="create repositories"
                )
                await claim_namespace(conn, namespace, who)  # ``library`` gets its organization
            for candidate in candidate_names(namespace, name):
                if await find_repository(conn, candidate) is not None:
                    raise Conflict("repository", "repository already exists", {"name": candidate})
            await create_repository(
                conn,
                name_full,
                actor=who,
                is_private=is_private,
                default_private=self.ctx.settings.default_private,
                description=description,
                full_description=full_description,
                source_ip=source_ip,
            )

        try:
            await self.ctx.db.run_write(work)
        except QuotaExceeded as exc:  # past the namespace's repository limit: refused, and said so as a push is
            await record_refusal(self.ctx.db, exc, repository=name_full, actor=who)
            raise
        return await self.get(actor, namespace, name)

    async def update(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        *,
        description: str | None = None,
        full_description: str | None = None,
        is_private: bool | None = None,
        immutable_tags: ImmutableTagsSettings | None = None,
        source_ip: str = "",
    ) -> RepositoryView:
        """Change what is given (admin level on the repository); ``immutable_tags`` is Docker Hub's
        ``immutable_tags_settings`` (``Invalid("request")`` for a rule RE2 cannot compile)."""
        check_texts(description, full_description)
        who = actor.audit_name or None

        async def work(conn: AsyncConnection) -> None:
            record, _ = await resolve(conn, actor, namespace, name, Level.ADMIN)
            if immutable_tags is not None:
                await store_repository_settings(
                    conn,
                    record.id,
                    immutable_tags,
                    name=record.name,
                    namespace=record.namespace,
                    actor=who,
                    source_ip=source_ip,
                )
            await update_repository(
                conn,
                record.id,
                actor=who,
                description=description,
                full_description=full_description,
                is_private=is_private,
                source_ip=source_ip,
            )

        await self.ctx.db.run_write(work)
        return await self.get(actor, namespace, name)

    async def delete(self, actor: Principal, namespace: str, name: str, *, source_ip: str = "") -> None:
        """Delete the repository with its tags, manifests, blob links, grants, stars and upload sessions (admin
        level). Blob bytes are left to garbage collection; upload objects are dropped after the commit."""
        who = actor.audit_name or None

        async def work(conn: AsyncConnection) -> list[str]:
            record, _ = await resolve(conn, actor, namespace, name, Level.ADMIN)
            doomed = DoomedRepository(record.id, record.name, record.namespace)
            return await delete_repositories(conn, [doomed], actor=who, source_ip=source_ip)

        await drop_upload_objects(self.ctx.store, await self.ctx.db.run_write(work))

    async def star(self, actor: Principal, namespace: str, name: str) -> None:
        """Star a repository the actor may see (users only). Starring twice is no error."""
        account_id = _starrer(actor)

        async def work(conn: AsyncConnection) -> None:
            record, _ = await resolve(conn, actor, namespace, name)
            added = await insert_ignore(
                conn, Star, {"account_id": account_id, "repository_id": record.id, "created_at": utcnow()}
            )
            if added:
                await conn.execute(
                    update(Repository).where(Repository.id == record.id).values(star_count=Repository.star_count + 1)
                )

        await self.ctx.db.run_write(work)

    async def unstar(self, actor: Principal, namespace: str, name: str) -> None:
        """Remove the actor's star; no error if there was none."""
        account_id = _starrer(actor)

        async def work(conn: AsyncConnection) -> None:
            record, _ = await resolve(conn, actor, namespace, name)
            result = await conn.execute(
                delete(Star).where(Star.account_id == account_id, Star.repository_id == record.id)
            )
            if result.rowcount:
                await conn.execute(
                    update(Repository)
                    .where(Repository.id == record.id, Repository.star_count > 0)
                    .values(star_count=Repository.star_count - 1)
                )

        await self.ctx.db.run_write(work)

    async def list_starred(self, actor: Principal, username: str, page: PageRequest) -> Page[RepositorySummary]:
        """The repositories ``username`` starred that the actor may see, most recently starred first. Raises
        ``NotFound("account")`` for an unknown user."""
        async with self.ctx.db.read(consistent=True) as conn:
            starrer = (
                await conn.execute(select(Account.id).where(Account.name == username, Account.kind == USER))
            ).scalar_one_or_none()
            if starrer is None:
                raise NotFound("account", "user not found", {"username": username[:255]})
            facts = await load_facts(conn, actor)
            where = [Star.account_id == starrer, visible_repositories(actor, facts)]
            base = select(*SUMMARY_COLUMNS).join(Star, Star.repository_id == Repository.id).where(*where)
            total = int(
                (
                    await conn.execute(
                        select(func.count())
                        .select_from(Repository)
                        .join(Star, Star.repository_id == Repository.id)
                        .where(*where)
                    )
                ).scalar_one()
            )
            rows = (
                await conn.execute(
                    base.order_by(Star.created_at.desc(), Repository.name.asc())
                    .limit(page.page_size)
                    .offset(page.offset)
                )
            ).all()
            records = [RepositoryRecord.from_row(row) for row in rows]
            content = await content_facts(conn, [r.id for r in records])
        return Page([summary(r, content[r.id], affiliation(facts, r.namespace)) for r in records], total, page)
