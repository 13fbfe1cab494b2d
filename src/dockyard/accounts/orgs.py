"""Organizations: creation, profile, deletion, and membership (roles owner / editor / member).

``org_members`` is the source of truth for roles: owners administer the organization's namespace (every
repository in it, its teams, robots and members); editors push to every repository of it (``authz.permissions``)
but manage nothing; members see the organization's teams and members and get repository access through teams.
There is no implicit "owners" team. An organization always keeps an owner.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import Select, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import (
    delete_account,
    is_self,
    org_info,
    paged,
    require_interactive,
    require_name_free,
    require_org,
    require_org_member,
    require_org_owner,
    require_user,
)
from dockyard.accounts.names import validate_org_name, validate_profile_url, validate_text
from dockyard.accounts.snapshots import MEMBER, ORG_ROLES, OWNER, MemberInfo, OrgInfo, UserOrgInfo
from dockyard.auth.second_factor import has_second_factor
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, Denied, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgMember, Team, TeamMember
from dockyard.models.accounts import ORG
from dockyard.models.base import utcnow
from dockyard.registry.repositories import drop_upload_objects
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore


def validate_role(role: str) -> str:
    if role not in ORG_ROLES:
        raise Invalid("member", "role must be owner, editor or member", {"role": str(role)[:50]})
    return role


class OrgService:
    """Organizations and their members. Raises NotFound (no such organization or user), Denied (not an owner,
    or for listings not a member), Conflict (name taken or reserved, already a member, last owner) and Invalid.
    Deleting an organization deletes everything its namespace holds and reserves its name (``delete_account``)."""

    def __init__(self, db: Database, settings: Settings, store: BlobStore | None = None) -> None:
        self._db = db
        self._settings = settings
        self._store = store  # where a deleted organization's upload objects are dropped
        self._grace = timedelta(days=settings.deleted_name_grace_days)

    async def create_org(
        self, name: str, *, owner: str | None = None, actor: Principal, source_ip: str = ""
    ) -> OrgInfo:
        """Create an organization owned by ``owner`` (default: the acting user). Users create organizations they
        own; site administrators (and the CLI) may name any user as the owner."""
        require_interactive(actor, "create organizations")
        if owner is None:
            if actor.kind != "user":
                raise Invalid("member", "name the organization's owner")
            owner = actor.name
        if owner != actor.name and not actor.superuser:
            raise Denied("organization", "you may only create organizations that you own")
        name = validate_org_name(name)
        now = utcnow()
        try:
            async with self._db.write() as conn:
                owner_row = await require_user(conn, owner)
                await require_name_free(conn, name, "organization", adopt=actor.superuser)
                org_id = (
                    await conn.execute(
                        insert(Account).values(name=name, kind=ORG, created_at=now).returning(Account.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(OrgMember).values(org_id=org_id, user_id=owner_row.id, role=OWNER, created_at=now)
                )
                await record_audit(
                    conn,
                    name,
                    "org.create",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                    data={"owner": owner},
                )
                row = (await conn.execute(select(Account).where(Account.id == org_id))).one()
        except IntegrityError as exc:  # a concurrent creation of the same name (PostgreSQL)
            raise Conflict("organization", "this name is already taken", {"name": name}) from exc
        return org_info(row)

    async def get_org(self, name: str) -> OrgInfo:
        """An organization's profile (public)."""
        async with self._db.read() as conn:
            return org_info(await require_org(conn, name))

    async def get_managed_org(self, name: str, *, actor: Principal) -> OrgInfo:
        """An organization's profile for its management pages: raises ``Denied`` unless ``actor`` owns it (the
        authorizer's namespace rule: owners manage members, teams and grants)."""
        async with self._db.read() as conn:
            return org_info(await require_org_owner(conn, actor, name))

    async def get_settings(self, name: str, *, actor: Principal) -> OrgInfo:
        """The organization, for its settings (its members)."""
        async with self._db.read(consistent=True) as conn:
            return org_info(await require_org_member(conn, actor, name))

    async def update_org(
        self,
        name: str,
        *,
        full_name: str | None = None,
        company: str | None = None,
        location: str | None = None,
        profile_url: str | None = None,
        description: str | None = None,
        default_private: bool | None = None,
        require_two_factor: bool | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> OrgInfo:
        """Change the given fields (None: unchanged). Owners only. Turning ``require_two_factor`` on needs an
        owner who has two-factor sign-in (or a site administrator): an owner cannot lock themselves out of the
        organization's repositories by accident."""
        values: dict[str, Any] = {}
        for field, value in (("full_name", full_name), ("company", company), ("location", location)):
            if value is not None:
                values[field] = validate_text(value, field)
        if description is not None:
            values["description"] = validate_text(description, "description")
        if profile_url is not None:
            values["profile_url"] = validate_profile_url(profile_url)
        if default_private is not None:
            values["default_private"] = bool(default_private)
        if require_two_factor is not None:
            values["require_two_factor"] = bool(require_two_factor)
        async with self._db.write() as conn:
            row = await require_org_owner(conn, actor, name)
            turning_on = require_two_factor and not row.require_two_factor and not actor.superuser
            if turning_on and (actor.account_id is None or not await has_second_factor(conn, actor.account_id)):
                raise Conflict(
                    "organization",
                    "turn on two-factor sign-in for your own account before requiring it of the organization",
                )
            if values:
                await conn.execute(update(Account).where(Account.id == row.id).values(**values))
                await record_audit(
                    conn,
                    name,
                    "org.update",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                    data={"fields": sorted(values)},
                )
            row = (await conn.execute(select(Account).where(Account.id == row.id))).one()
        return org_info(row)

    async def delete_org(self, name: str, *, actor: Principal, source_ip: str = "") -> list[str]:
        """Delete an organization with its repositories (``repository.deleted`` each), webhooks, trust settings,
        teams, robots and memberships; its audit log is archived and its name reserved for the grace period.
        Owners (with their own credentials, not an access token) and site administrators. Returns the
        repositories deleted."""
        require_interactive(actor, "delete organizations")

        async def work(conn: AsyncConnection) -> tuple[list[str], list[str]]:
            row = await require_org_owner(conn, actor, name)
            return await delete_account(
                conn, row, action="org.delete", actor=actor.audit_name, source_ip=source_ip, grace=self._grace
            )

        # Retried on a PostgreSQL deadlock: the deletion meets the webhook and signature workers on the same rows.
        deleted, uploads = await self._db.run_write(work)
        await drop_upload_objects(self._store, uploads)
        return deleted

    async def list_members(
        self, org: str, page: PageRequest, *, actor: Principal, role: str | None = None, search: str | None = None
    ) -> Page[MemberInfo]:
        """Members by name, with their teams, optionally of one ``role`` or whose name contains ``search``;
        visible to the organization's members (e-mail addresses to its owners and site administrators)."""
        async with self._db.read(consistent=True) as conn:
            row = await require_org_member(conn, actor, org)
            query = _member_query(row.id).order_by(Account.name)
            if role is not None:
                query = query.where(OrgMember.role == validate_role(role))
            if search:
                query = query.where(Account.name.contains(search, autoescape=True))
            found = await paged(conn, query, page, _member_info)
            members = await _with_groups(conn, row.id, found.items, await is_org_owner(conn, actor, row.id))
            return replace(found, items=members)

    async def export_members(self, org: str, *, actor: Principal) -> list[MemberInfo]:
        """Every member with e-mail address and teams, by name (owners and site administrators)."""
        async with self._db.read(consistent=True) as conn:
            row = await require_org_owner(conn, actor, org)
            rows = (await conn.execute(_member_query(row.id).order_by(Account.name))).all()
            return await _with_groups(conn, row.id, [_member_info(r) for r in rows], True)

    async def get_member(self, org: str, username: str, *, actor: Principal) -> MemberInfo:
        async with self._db.read(consistent=True) as conn:
            row = await require_org_member(conn, actor, org)
            member = await _member(conn, row.id, username)
            return (await _with_groups(conn, row.id, [member], await is_org_owner(conn, actor, row.id)))[0]

    async def add_member(
        self, org: str, username: str, role: str = MEMBER, *, actor: Principal, source_ip: str = ""
    ) -> MemberInfo:
        """Add a user to the organization (owners only). Conflict if already a member."""
        validate_role(role)
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            user = await require_user(conn, username)
            if await _role_of(conn, org_row.id, user.id) is not None:
                raise Conflict("member", "the user is already a member", {"org": org, "username": username})
            await add_membership(conn, org_row.id, org, user.id, username, role, actor, source_ip)
            return (await _with_groups(conn, org_row.id, [await _member(conn, org_row.id, username)], True))[0]

    async def set_member_role(
        self, org: str, username: str, role: str, *, actor: Principal, source_ip: str = ""
    ) -> MemberInfo:
        """Change a member's role: owner, editor or member (owners only; the last owner stays)."""
        validate_role(role)
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            user = await require_user(conn, username)
            current = await _role_of(conn, org_row.id, user.id)
            if current is None:
                raise NotFound("member", "the user is not a member", {"org": org, "username": username})
            if current != role:
                if current == OWNER:
                    await _require_another_owner(conn, org_row.id, user.id)
                await conn.execute(
                    update(OrgMember)
                    .where(OrgMember.org_id == org_row.id, OrgMember.user_id == user.id)
                    .values(role=role)
                )
                await record_audit(
                    conn,
                    org,
                    "org.member.role",
                    actor=actor.audit_name,
                    target=username,
                    source_ip=source_ip,
                    data={"role": role, "previous": current},
                )
            return (await _with_groups(conn, org_row.id, [await _member(conn, org_row.id, username)], True))[0]

    async def remove_member(self, org: str, username: str, *, actor: Principal, source_ip: str = "") -> None:
        """Remove a user from the organization and all its teams. Owners may remove anyone, members may leave;
        the last owner cannot go (Conflict)."""
        async with self._db.write() as conn:
            org_row = await require_org(conn, org)
            user = await require_user(conn, username)
            if not is_self(actor, user.id):
                org_row = await require_org_owner(conn, actor, org)
            elif actor.token_id is not None:
                raise Denied("token", "a personal access token may not leave an organization")
            current = await _role_of(conn, org_row.id, user.id)
            if current is None:
                raise NotFound("member", "the user is not a member", {"org": org, "username": username})
            if current == OWNER:
                await _require_another_owner(conn, org_row.id, user.id)
            await conn.execute(
                delete(TeamMember).where(
                    TeamMember.user_id == user.id,
                    TeamMember.team_id.in_(select(Team.id).where(Team.org_id == org_row.id)),
                )
            )
            await conn.execute(delete(OrgMember).where(OrgMember.org_id == org_row.id, OrgMember.user_id == user.id))
            await record_audit(
                conn, org, "org.member.remove", actor=actor.audit_name, target=username, source_ip=source_ip
            )

    async def list_user_orgs(self, username: str, page: PageRequest, *, actor: Principal) -> Page[UserOrgInfo]:
        """The organizations ``username`` belongs to, by name (the user themselves and site administrators)."""
        async with self._db.read(consistent=True) as conn:
            user = await require_user(conn, username)
            if not actor.superuser and not is_self(actor, user.id):
                raise Denied("account", "only the user or a site administrator may list the user's organizations")
            query = (
                select(Account, OrgMember.role)
                .join(OrgMember, OrgMember.org_id == Account.id)
                .where(OrgMember.user_id == user.id)
                .order_by(Account.name)
            )
            return await paged(conn, query, page, lambda r: UserOrgInfo(org=org_info(r), role=r.role))


async def add_membership(
    conn: AsyncConnection,
    org_id: int,
    org: str,
    user_id: int,
    username: str,
    role: str,
    actor: Principal,
    source_ip: str,
) -> None:
    """Insert the membership row and its audit entry; Conflict if the user is a member already (a concurrent
    addition included)."""
    values = {"org_id": org_id, "user_id": user_id, "role": role, "created_at": utcnow()}
    if not await insert_ignore(conn, OrgMember, values):
        raise Conflict("member", "the user is already a member", {"org": org, "username": username})
    await record_audit(
        conn,
        org,
        "org.member.add",
        actor=actor.audit_name,
        target=username,
        source_ip=source_ip,
        data={"role": role},
    )


async def _role_of(conn: AsyncConnection, org_id: int, user_id: int) -> str | None:
    return (
        await conn.execute(select(OrgMember.role).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id))
    ).scalar_one_or_none()


async def _require_another_owner(conn: AsyncConnection, org_id: int, user_id: int) -> None:
    # Lock the owners' rows (PostgreSQL), so that two owners removing each other at once cannot both succeed.
    owners = (
        await conn.execute(
            select(OrgMember.user_id).where(OrgMember.org_id == org_id, OrgMember.role == OWNER).with_for_update()
        )
    ).all()
    if not any(other != user_id for (other,) in owners):
        raise Conflict("member", "an organization needs at least one owner")


def _member_query(org_id: int) -> Select[*tuple[Any, ...]]:
    return (
        select(
            Account.id,
            Account.name,
            Account.full_name,
            Account.email,
            Account.company,
            Account.location,
            Account.profile_url,
            OrgMember.role,
            OrgMember.created_at,
        )
        .join(OrgMember, OrgMember.user_id == Account.id)
        .where(OrgMember.org_id == org_id)
    )


async def _member(conn: AsyncConnection, org_id: int, username: str) -> MemberInfo:
    row = (await conn.execute(_member_query(org_id).where(Account.name == username))).first()
    if row is None:
        raise NotFound("member", "the user is not a member", {"username": username})
    return _member_info(row)


def _member_info(row: Any) -> MemberInfo:
    return MemberInfo(
        username=row.name,
        full_name=row.full_name,
        role=row.role,
        joined_at=row.created_at,
        user_id=row.id,
        email=row.email,
        company=row.company,
        location=row.location,
        profile_url=row.profile_url,
    )


async def is_org_owner(conn: AsyncConnection, actor: Principal, org_id: int) -> bool:
    """Whether ``actor`` is an owner of the organization or a site administrator: who sees members' e-mail
    addresses."""
    if actor.superuser:
        return True
    return actor.account_id is not None and await _role_of(conn, org_id, actor.account_id) == OWNER


async def _with_groups(
    conn: AsyncConnection, org_id: int, members: list[MemberInfo], show_email: bool
) -> list[MemberInfo]:
    """``members`` with the organization's teams each is in, and without e-mail unless ``show_email``."""
    groups: dict[int, list[str]] = {}
    if members:
        rows = await conn.execute(
            select(TeamMember.user_id, Team.name)
            .join(Team, Team.id == TeamMember.team_id)
            .where(Team.org_id == org_id, TeamMember.user_id.in_([m.user_id for m in members]))
            .order_by(Team.name)
        )
        for user_id, team in rows:
            groups.setdefault(user_id, []).append(team)
    return [replace(m, groups=tuple(groups.get(m.user_id, ())), email=m.email if show_email else None) for m in members]
