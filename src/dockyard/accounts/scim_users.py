"""Users provisioned by an organization's identity provider through SCIM 2.0 (RFC 7644 §3): listed (with the
``userName``/``externalId`` filter and paging), created, read, replaced, patched and deleted — for the one
organization whose SCIM token authenticated the request, which sees only the users it provisioned.

A provisioned user is an ordinary Dockyard user without a password (they sign in once a site administrator sets
one, or by SSO where the server has it), a member of the organization while ``active``. ``active: false`` disables the
account — its sign-ins, API and refresh tokens, personal access tokens and web sessions stop working at once, as
``dockyard user disable`` does — and removes it from the organization and its teams; ``active: true`` enables it
and makes it a member again. A deletion deletes the account as ``dockyard user delete`` does. Every change is
audited in the organization's log (``scim.user.*``) and the user's (``account.*``), in the change's transaction.

Raises NotFound (no such provisioned user in this organization), Conflict with ``scimType`` ``uniqueness`` (the
``userName`` is taken) and Invalid with a ``scimType`` (``attributes.scim_invalid``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from dockyard.accounts.common import delete_account
from dockyard.accounts.creation import insert_user
from dockyard.accounts.names import ACCOUNT_NAME_RE
from dockyard.accounts.scim_attributes import ScimUserFields, account_names, apply_patch, parse_filter, scim_invalid
from dockyard.accounts.scim_tokens import ScimOrg
from dockyard.accounts.snapshots import MEMBER, OWNER
from dockyard.auth.refresh import end_sessions
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgMember, ScimUser, Team, TeamMember
from dockyard.models.base import utcnow
from dockyard.registry.namespaces import forget_reservation, name_use
from dockyard.registry.repositories import drop_upload_objects
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore

ACTOR = "scim"  # the audit actor of changes an identity provider makes
MAX_COUNT = 200  # RFC 7644 §3.4.2.4: the provider may cap ``count``; ServiceProviderConfig says so


@dataclass(frozen=True, slots=True)
class ScimUserInfo:
    id: str
    account: str  # the Dockyard account name
    fields: ScimUserFields
    groups: tuple[tuple[str, str], ...]  # (team uuid, team name) of the organization's teams
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ScimPage:
    total: int
    start_index: int
    items: list[ScimUserInfo]


def _uniqueness(user_name: str) -> Conflict:
    return Conflict("account", f"userName {user_name!r} is already taken", {"scimType": "uniqueness"})


class ScimUserService:
    def __init__(self, db: Database, settings: Settings, store: BlobStore | None = None) -> None:
        self._db = db
        self._store = store  # where a deleted user's upload objects are dropped
        self._grace = timedelta(days=settings.deleted_name_grace_days)

    async def list(self, org: ScimOrg, filter_text: str | None, start_index: int, count: int) -> ScimPage:
        """One page (``startIndex`` is 1-based, ``count`` at most ``MAX_COUNT``) of the organization's provisioned
        users in order of creation, optionally filtered (``attributes.parse_filter``)."""
        start_index = max(start_index, 1)
        count = min(max(count, 0), MAX_COUNT)
        query = _user_query().where(ScimUser.org_id == org.id)
        if filter_text:
            attribute, value = parse_filter(filter_text)
            if attribute == "username":
                query = query.where(ScimUser.user_name_key == value.lower())
            else:
                query = query.where(ScimUser.external_id == value)
        async with self._db.read(consistent=True) as conn:
            total = (await conn.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
            rows = (
                await conn.execute(
                    query.order_by(ScimUser.created_at, ScimUser.id).offset(start_index - 1).limit(count)
                )
            ).all()
            items = [await _info(conn, org, row) for row in rows]
        return ScimPage(int(total), start_index, items)

    async def get(self, org: ScimOrg, user_id: str) -> ScimUserInfo:
        async with self._db.read(consistent=True) as conn:
            return await _info(conn, org, await _require(conn, org, user_id))

    async def create(self, org: ScimOrg, fields: ScimUserFields, source_ip: str = "") -> ScimUserInfo:
        """A new user named after ``userName`` (``attributes.account_names``), a member of the organization when
        active. Conflict (``uniqueness``) when a provisioned user has that ``userName``, or when ``userName`` is
        itself a Dockyard account name that is taken."""
        try:
            async with self._db.write() as conn:
                await _require_user_name_free(conn, fields.user_name, None)
                name = await _free_account_name(conn, fields.user_name)
                now = utcnow()
                account_id = await insert_user(
                    conn,
                    name,
                    actor=ACTOR,
                    source_ip=source_ip,
                    email=fields.email,
                    full_name=fields.full_name,
                    disabled=not fields.active,
                    audit={"scim": org.name},
                )
                scim_id = str(uuid.uuid4())
                await conn.execute(
                    insert(ScimUser).values(
                        id=scim_id,
                        org_id=org.id,
                        user_id=account_id,
                        created_at=now,
                        updated_at=now,
                        **_link_values(fields),
                    )
                )
                await record_audit(
                    conn,
                    org.name,
                    "scim.user.create",
                    actor=ACTOR,
                    target=name,
                    source_ip=source_ip,
                    data={"userName": fields.user_name, "active": fields.active},
                )
                if fields.active:
                    await _join(conn, org, account_id, name, source_ip)
                return await _info(conn, org, await _require(conn, org, scim_id))
        except IntegrityError as exc:  # a concurrent creation of the same userName or account name (PostgreSQL)
            raise _uniqueness(fields.user_name) from exc

    async def replace(self, org: ScimOrg, user_id: str, fields: ScimUserFields, source_ip: str = "") -> ScimUserInfo:
        """PUT: every attribute Dockyard keeps takes the given value (an omitted one is cleared, ``active``
        defaults to true). The Dockyard account name never changes."""
        return await self._update(org, user_id, lambda _: fields, source_ip)

    async def patch(self, org: ScimOrg, user_id: str, body: Any, source_ip: str = "") -> ScimUserInfo:
        """PATCH with a PatchOp (``attributes.apply_patch``)."""
        return await self._update(org, user_id, lambda current: apply_patch(current, body), source_ip)

    async def delete(self, org: ScimOrg, user_id: str, source_ip: str = "") -> None:
        """Delete the user's account with everything its namespace holds (``common.delete_account``). Conflict
        while the user is the only owner of an organization; a site administrator is not deleted through SCIM."""

        async def work(conn: AsyncConnection) -> list[str]:
            row = await _require(conn, org, user_id)
            account = (await conn.execute(select(Account).where(Account.id == row.user_id))).one()
            if account.is_admin:
                raise scim_invalid("mutability", "a site administrator is not deleted through SCIM")
            if await _sole_owner(conn, account.id):
                raise Conflict("member", "the user is the only owner of an organization", {"scimType": "mutability"})
            await record_audit(
                conn,
                org.name,
                "scim.user.delete",
                actor=ACTOR,
                target=account.name,
                source_ip=source_ip,
                data={"userName": row.user_name},
            )
            _, uploads = await delete_account(
                conn, account, action="account.delete", actor=ACTOR, source_ip=source_ip, grace=self._grace
            )
            return uploads

        uploads = await self._db.run_write(work)
        await drop_upload_objects(self._store, uploads)

    async def _update(
        self, org: ScimOrg, user_id: str, change: Callable[[ScimUserFields], ScimUserFields], source_ip: str
    ) -> ScimUserInfo:
        try:
            async with self._db.write() as conn:
                row = await _require(conn, org, user_id)
                current = _fields(row)
                fields = change(current)
                if fields.user_name.lower() != row.user_name_key:
                    await _require_user_name_free(conn, fields.user_name, row.id)
                await conn.execute(
                    update(ScimUser).where(ScimUser.id == row.id).values(updated_at=utcnow(), **_link_values(fields))
                )
                await conn.execute(
                    update(Account)
                    .where(Account.id == row.user_id)
                    .values(full_name=fields.full_name, email=fields.email)
                )
                changed = sorted(
                    name for name in ScimUserFields.__slots__ if getattr(current, name) != getattr(fields, name)
                )
                if changed:
                    await record_audit(
                        conn,
                        org.name,
                        "scim.user.update",
                        actor=ACTOR,
                        target=row.name,
                        source_ip=source_ip,
                        data={"fields": changed},
                    )
                if fields.active != current.active:
                    await self._set_active(conn, org, row, fields.active, source_ip)
                return await _info(conn, org, await _require(conn, org, user_id))
        except IntegrityError as exc:  # a concurrent change to the same userName (PostgreSQL)
            raise Conflict("account", "the userName is already taken", {"scimType": "uniqueness"}) from exc

    async def _set_active(self, conn: AsyncConnection, org: ScimOrg, row: Any, active: bool, source_ip: str) -> None:
        if active:
            await conn.execute(update(Account).where(Account.id == row.user_id).values(disabled=False))
            await record_audit(conn, row.name, "account.enable", actor=ACTOR, target=row.name, source_ip=source_ip)
            await record_audit(conn, org.name, "scim.user.activate", actor=ACTOR, target=row.name, source_ip=source_ip)
            await _join(conn, org, row.user_id, row.name, source_ip)
            return
        if row.is_admin:
            raise scim_invalid("mutability", "a site administrator is not deactivated through SCIM")
        role = (
            await conn.execute(
                select(OrgMember.role).where(OrgMember.org_id == org.id, OrgMember.user_id == row.user_id)
            )
        ).scalar_one_or_none()
        if role == OWNER and await _only_owner(conn, org.id, row.user_id):
            raise Conflict("member", "an organization needs at least one owner", {"scimType": "mutability"})
        await conn.execute(update(Account).where(Account.id == row.user_id).values(disabled=True))
        await end_sessions(conn, row.user_id)
        await record_audit(conn, row.name, "account.disable", actor=ACTOR, target=row.name, source_ip=source_ip)
        await record_audit(conn, org.name, "scim.user.deactivate", actor=ACTOR, target=row.name, source_ip=source_ip)
        if role is not None:
            await conn.execute(
                delete(TeamMember).where(
                    TeamMember.user_id == row.user_id,
                    TeamMember.team_id.in_(select(Team.id).where(Team.org_id == org.id)),
                )
            )
            await conn.execute(delete(OrgMember).where(OrgMember.org_id == org.id, OrgMember.user_id == row.user_id))
            await record_audit(conn, org.name, "org.member.remove", actor=ACTOR, target=row.name, source_ip=source_ip)


def _user_query() -> Any:
    return select(
        ScimUser,
        Account.name,
        Account.email,
        Account.full_name,
        Account.disabled,
        Account.is_admin,
    ).join(Account, Account.id == ScimUser.user_id)


async def _require(conn: AsyncConnection, org: ScimOrg, user_id: str) -> Any:
    row = (await conn.execute(_user_query().where(ScimUser.id == user_id[:36], ScimUser.org_id == org.id))).first()
    if row is None:
        raise NotFound("account", "no such user", {"id": user_id[:100]})
    return row


def _fields(row: Any) -> ScimUserFields:
    display = row.full_name
    derived = " ".join(part for part in (row.given_name, row.family_name) if part)
    return ScimUserFields(
        user_name=row.user_name,
        external_id=row.external_id,
        given_name=row.given_name,
        family_name=row.family_name,
        display_name="" if display == derived else display,
        email=row.email,
        active=not row.disabled,
    )


def _link_values(fields: ScimUserFields) -> dict[str, Any]:
    return {
        "user_name": fields.user_name,
        "user_name_key": fields.user_name.lower(),
        "external_id": fields.external_id,
        "given_name": fields.given_name,
        "family_name": fields.family_name,
    }


async def _info(conn: AsyncConnection, org: ScimOrg, row: Any) -> ScimUserInfo:
    teams = await conn.execute(
        select(Team.uuid, Team.name)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.org_id == org.id, TeamMember.user_id == row.user_id)
        .order_by(Team.name)
    )
    return ScimUserInfo(
        id=row.id,
        account=row.name,
        fields=_fields(row),
        groups=tuple((team_uuid, name) for team_uuid, name in teams),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


async def _require_user_name_free(conn: AsyncConnection, user_name: str, own_id: str | None) -> None:
    taken = (
        await conn.execute(select(ScimUser.id).where(ScimUser.user_name_key == user_name.lower()))
    ).scalar_one_or_none()
    if taken is not None and taken != own_id:
        raise _uniqueness(user_name)


async def _free_account_name(conn: AsyncConnection, user_name: str) -> str:
    """The first free name of ``attributes.account_names``; a ``userName`` that is a Dockyard name must be free
    itself (the provider meant that account)."""
    exact = user_name.strip().lower()
    if ACCOUNT_NAME_RE.match(exact) and await name_use(conn, exact) is not None:
        raise _uniqueness(user_name)
    for candidate in account_names(user_name):
        if await name_use(conn, candidate) is None:
            await forget_reservation(conn, candidate)
            return candidate
    raise _uniqueness(user_name)


async def _join(conn: AsyncConnection, org: ScimOrg, user_id: int, name: str, source_ip: str) -> None:
    values = {"org_id": org.id, "user_id": user_id, "role": MEMBER, "created_at": utcnow()}
    if await insert_ignore(conn, OrgMember, values):
        await record_audit(
            conn, org.name, "org.member.add", actor=ACTOR, target=name, source_ip=source_ip, data={"role": MEMBER}
        )


async def _only_owner(conn: AsyncConnection, org_id: int, user_id: int) -> bool:
    owners = (
        await conn.execute(
            select(OrgMember.user_id).where(OrgMember.org_id == org_id, OrgMember.role == OWNER).with_for_update()
        )
    ).all()
    return not any(other != user_id for (other,) in owners)


async def _sole_owner(conn: AsyncConnection, user_id: int) -> bool:
    """Whether ``user_id`` is the only owner of some organization."""
    other = aliased(OrgMember)
    found = (
        await conn.execute(
            select(OrgMember.org_id)
            .where(
                OrgMember.user_id == user_id,
                OrgMember.role == OWNER,
                ~exists().where(and_(other.org_id == OrgMember.org_id, other.role == OWNER, other.user_id != user_id)),
            )
            .limit(1)
        )
    ).first()
    return found is not None
