"""Organization invites (Docker Hub's ``/v2/invites``): an organization's owners invite people by user name or
e-mail address to join it with a role (owner, editor or member), optionally into one of its teams; the invitee
accepts or declines through the invitation link (``/invites/<token>`` on the web hub, or the API with the token).

- Only the organization's owners create, list, resend and delete invites (``require_org_owner``: the authorizer's
  namespace rule). An invite addressed by its id to someone who may not manage it is a ``NotFound``, as for any
  object addressed by its own id.
- An invite by user name may be accepted by that user only; an invite by e-mail address by whoever holds its link
  and is signed in (the link went to that address). Accepting makes the user a member with the invite's role (and
  puts them in its team), in one transaction with deleting the invite; declining deletes it. Both need the
  account's own sign-in (not a personal access token), as leaving an organization does.
- An invite expires ``invite_expiry_days`` after it was made or last resent; an expired one cannot be accepted, and
  inviting the same person again replaces it.
- With an SMTP server configured (``smtp_host``) the link is mailed by the ``invites.send`` job (enqueued in the
  invite's transaction; ``dockyard.accounts.tasks``), never inline. Without one, the link is given to the owners
  instead (``InviteInfo.link``). The token is stored as its SHA-256 (what acceptance looks up) and sealed with the
  server secret (what is mailed again on resend and shown to owners).
- Every change is audited in the organization's log: ``org.invite.create`` / ``resend`` / ``delete`` /
  ``accept`` / ``decline``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import find_account, require_interactive, require_org, require_org_owner
from dockyard.accounts.names import MAX_EMAIL_LENGTH, validate_email
from dockyard.accounts.orgs import add_membership, validate_role
from dockyard.accounts.snapshots import MEMBER
from dockyard.auth.secrets import SecretBox, fingerprint, new_token
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, Denied, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.jobs.queue import enqueue
from dockyard.models import Account, OrgInvite, OrgMember, Team, TeamMember
from dockyard.models.accounts import USER
from dockyard.models.base import utcnow
from dockyard.settings import Settings

SEND_JOB = "invites.send"
TOKEN_PREFIX = "dy_inv_"  # noqa: S105 (a prefix, not a secret)
MAX_INVITEES = 1000  # Docker Hub's limit per request

# Docker Hub's bulk statuses, per invitee.
INVITED = "invited"
EXISTING_MEMBER = "existing_org_member"
ALREADY_INVITED = "already_invited"
INVALID_INVITEE = "invalid_email_or_docker_id"


@dataclass(frozen=True, slots=True)
class InviteInfo:
    """One invite as its organization's owners see it. ``link``: the invitation link, given only when no SMTP
    server is configured (else it goes to the invitee alone)."""

    id: str
    org: str
    team: str | None
    invitee: str
    role: str
    inviter: str
    created_at: datetime
    expires_at: datetime
    sent_at: datetime | None
    link: str | None

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()


@dataclass(frozen=True, slots=True)
class BulkResult:
    """Docker Hub's bulk answer for one invitee: its status and, when invited (or already), the invite."""

    invitee: str
    status: str
    invite: InviteInfo | None


@dataclass(frozen=True, slots=True)
class Invitation:
    """An invite as its link shows it to the invitee."""

    id: str
    org: str
    team: str | None
    role: str
    inviter: str
    invitee: str
    expires_at: datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= utcnow()


def invite_link(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/invites/{token}"


def mail_enabled(settings: Settings) -> bool:
    return bool(settings.smtp_host)


class InviteService:
    """Organization invites. Raises NotFound (no such organization, team or invite — or one the caller may not
    manage), Denied (not an owner; an invite for another user), Conflict (expired; already a member) and Invalid.
    ``wake`` is called after a commit that queued e-mail."""

    def __init__(self, db: Database, settings: Settings, wake: Callable[[], None] | None = None) -> None:
        self._db = db
        self._settings = settings
        self._box = SecretBox(settings.secret_key)
        self._wake = wake or (lambda: None)

    def _base(self, base_url: str) -> str:
        return (self._settings.base_url or base_url).rstrip("/")

    def _expiry(self, now: datetime) -> datetime:
        return now + timedelta(days=self._settings.invite_expiry_days)

    async def invite(
        self,
        org: str,
        invitees: Sequence[str],
        *,
        team: str | None = None,
        role: str = MEMBER,
        dry_run: bool = False,
        base_url: str,
        actor: Principal,
        source_ip: str = "",
    ) -> list[BulkResult]:
        """Invite each of ``invitees`` (user names or e-mail addresses) to ``org`` (and ``team``) with ``role``;
        one result per distinct invitee, in order. ``dry_run``: check and answer, change nothing."""
        role = validate_role(role.lower() if isinstance(role, str) else role)
        names = _distinct(invitees)
        if not names:
            raise Invalid("invite", "name at least one invitee")
        if len(names) > MAX_INVITEES:
            raise Invalid("invite", f"at most {MAX_INVITEES} invitees at once")
        results: list[BulkResult] = []
        queued = False
        async with self._db.write() as conn:
            org_row = await require_org_owner(conn, actor, org)
            team_row = await _require_team(conn, org_row.id, org, team) if team else None
            for name in names:
                result = await self._invite_one(
                    conn, org_row, team_row, name, role, dry_run=dry_run, base_url=base_url, actor=actor
                )
                results.append(result)
                if result.status == INVITED and not dry_run:
                    mailed = await self._created(conn, org, result.invite, base_url, actor, source_ip)
                    queued = queued or mailed
        if queued:
            self._wake()
        return results

    async def _invite_one(
        self,
        conn: AsyncConnection,
        org_row: Row[Any],
        team_row: Row[Any] | None,
        name: str,
        role: str,
        *,
        dry_run: bool,
        base_url: str,
        actor: Principal,
    ) -> BulkResult:
        invitee, invitee_id = await _resolve(conn, name)
        if invitee is None:
            return BulkResult(name, INVALID_INVITEE, None)
        if invitee_id is not None and await _is_member(conn, org_row.id, invitee_id):
            return BulkResult(invitee, EXISTING_MEMBER, None)
        existing = (
            await conn.execute(select(OrgInvite).where(OrgInvite.org_id == org_row.id, OrgInvite.invitee == invitee))
        ).first()
        if existing is not None and existing.expires_at > utcnow():
            return BulkResult(invitee, ALREADY_INVITED, await self._info(conn, org_row.name, existing, base_url))
        if dry_run:
            return BulkResult(invitee, INVITED, None)
        if existing is not None:  # expired: replaced
            await conn.execute(delete(OrgInvite).where(OrgInvite.id == existing.id))
        token = new_token(TOKEN_PREFIX)
        invite_id = str(uuid.uuid4())
        now = utcnow()
        values = {
            "id": invite_id,
            "org_id": org_row.id,
            "team_id": team_row.id if team_row is not None else None,
            "invitee": invitee,
            "invitee_id": invitee_id,
            "role": role,
            "inviter": actor.audit_name,
            "token_hash": fingerprint(token),
            "token_sealed": self._box.seal(token.encode()),
            "created_at": now,
            "expires_at": self._expiry(now),
        }
        if not await insert_ignore(conn, OrgInvite, values):  # a concurrent invite of the same person
            return BulkResult(invitee, ALREADY_INVITED, None)
        row = (await conn.execute(select(OrgInvite).where(OrgInvite.id == invite_id))).one()
        return BulkResult(invitee, INVITED, await self._info(conn, org_row.name, row, base_url))

    async def _created(
        self,
        conn: AsyncConnection,
        org: str,
        invite: InviteInfo | None,
        base_url: str,
        actor: Principal,
        source_ip: str,
    ) -> bool:
        """Audit a new invite and queue its e-mail; whether a job was queued."""
        assert invite is not None
        await record_audit(
            conn,
            org,
            "org.invite.create",
            actor=actor.audit_name,
            target=invite.invitee,
            source_ip=source_ip,
            data={"id": invite.id, "role": invite.role, "team": invite.team},
        )
        return await self._queue_mail(conn, invite.id, invite.expires_at, base_url)

    async def _queue_mail(self, conn: AsyncConnection, invite_id: str, expires_at: datetime, base_url: str) -> bool:
        if not mail_enabled(self._settings):
            return False
        payload = {"invite_id": invite_id, "base_url": self._base(base_url)}
        await enqueue(conn, SEND_JOB, payload, max_attempts=10, expires_at=expires_at)
        return True

    async def list(self, org: str, *, base_url: str, actor: Principal) -> list[InviteInfo]:
        """The organization's invites, newest first, expired ones included (owners)."""
        async with self._db.read(consistent=True) as conn:
            org_row = await require_org_owner(conn, actor, org)
            rows = (
                await conn.execute(
                    select(OrgInvite)
                    .where(OrgInvite.org_id == org_row.id)
                    .order_by(OrgInvite.created_at.desc(), OrgInvite.id)
                )
            ).all()
            return [await self._info(conn, org, row, base_url) for row in rows]

    async def resend(self, invite_id: str, *, base_url: str, actor: Principal, source_ip: str = "") -> InviteInfo:
        """Renew the invite's expiry and mail its link again (the same link)."""
        async with self._db.write() as conn:
            row, org = await self._managed(conn, invite_id, actor)
            expires_at = self._expiry(utcnow())
            await conn.execute(update(OrgInvite).where(OrgInvite.id == row.id).values(expires_at=expires_at))
            queued = await self._queue_mail(conn, row.id, expires_at, base_url)
            await record_audit(
                conn, org, "org.invite.resend", actor=actor.audit_name, target=row.invitee, source_ip=source_ip
            )
            info = await self._info(conn, org, await _invite_row(conn, row.id), base_url)
        if queued:
            self._wake()
        return info

    async def delete(self, invite_id: str, *, actor: Principal, source_ip: str = "") -> None:
        """Cancel the invite: its link stops working."""
        async with self._db.write() as conn:
            row, org = await self._managed(conn, invite_id, actor)
            await conn.execute(delete(OrgInvite).where(OrgInvite.id == row.id))
            await record_audit(
                conn,
                org,
                "org.invite.delete",
                actor=actor.audit_name,
                target=row.invitee,
                source_ip=source_ip,
                data={"id": row.id},
            )

    async def _managed(self, conn: AsyncConnection, invite_id: str, actor: Principal) -> tuple[Row[Any], str]:
        """The invite and its organization's name, if ``actor`` owns the organization; NotFound otherwise."""
        row = (await conn.execute(select(OrgInvite).where(OrgInvite.id == invite_id[:36]))).first()
        missing = NotFound("invite", "invite not found", {"id": invite_id[:100]})
        if row is None:
            raise missing
        org = (await conn.execute(select(Account.name).where(Account.id == row.org_id))).scalar_one()
        try:
            await require_org_owner(conn, actor, org)
        except (Denied, NotFound):
            raise missing from None
        return row, org

    async def lookup(self, token: str) -> Invitation:
        """The invite behind a link (anyone holding it may see what it invites to). NotFound if there is none."""
        async with self._db.read(consistent=True) as conn:
            return await _invitation(conn, await _by_token(conn, token))

    async def accept(self, token: str, *, actor: Principal, source_ip: str = "") -> Invitation:
        """Join the organization (and team) as the invite says; the invite is used up."""
        require_interactive(actor, "accept invitations")
        async with self._db.write() as conn:
            row = await _by_token(conn, token)
            invitation = await _invitation(conn, row)
            user = await self._invitee(conn, row, actor, invitation)
            org_row = await require_org(conn, invitation.org)
            if not await _is_member(conn, org_row.id, user.id):
                await add_membership(conn, org_row.id, invitation.org, user.id, user.name, row.role, actor, source_ip)
            team_member = {"team_id": row.team_id, "user_id": user.id}
            if row.team_id is not None and await insert_ignore(conn, TeamMember, team_member):
                await record_audit(
                    conn,
                    invitation.org,
                    "team.member.add",
                    actor=actor.audit_name,
                    target=user.name,
                    source_ip=source_ip,
                    data={"team": invitation.team},
                )
            await conn.execute(delete(OrgInvite).where(OrgInvite.id == row.id))
            await record_audit(
                conn,
                invitation.org,
                "org.invite.accept",
                actor=actor.audit_name,
                target=invitation.invitee,
                source_ip=source_ip,
                data={"id": row.id, "role": row.role, "team": invitation.team},
            )
            return invitation

    async def decline(self, token: str, *, actor: Principal, source_ip: str = "") -> Invitation:
        """Turn the invite down; it is deleted."""
        require_interactive(actor, "decline invitations")
        async with self._db.write() as conn:
            row = await _by_token(conn, token)
            invitation = await _invitation(conn, row)
            if row.invitee_id is not None and row.invitee_id != actor.account_id:
                raise Denied("invite", "this invitation is for another user")
            await conn.execute(delete(OrgInvite).where(OrgInvite.id == row.id))
            await record_audit(
                conn,
                invitation.org,
                "org.invite.decline",
                actor=actor.audit_name,
                target=invitation.invitee,
                source_ip=source_ip,
                data={"id": row.id},
            )
            return invitation

    async def _invitee(
        self, conn: AsyncConnection, row: Row[Any], actor: Principal, invitation: Invitation
    ) -> Row[Any]:
        """The accepting user's row: the invited user for an invite by name; Conflict once the invite expired."""
        if invitation.expired:
            raise Conflict("invite", "this invitation has expired; ask for a new one")
        if row.invitee_id is not None and row.invitee_id != actor.account_id:
            raise Denied("invite", "this invitation is for another user")
        user = (await conn.execute(select(Account).where(Account.id == actor.account_id))).first()
        if user is None or user.kind != USER:
            raise Denied("invite", "only users may accept invitations")
        return user

    async def _info(self, conn: AsyncConnection, org: str, row: Any, base_url: str) -> InviteInfo:
        link = None
        if not mail_enabled(self._settings):
            link = invite_link(self._base(base_url), self._box.open(row.token_sealed).decode())
        return InviteInfo(
            id=row.id,
            org=org,
            team=await _team_name(conn, row.team_id),
            invitee=row.invitee,
            role=row.role,
            inviter=row.inviter,
            created_at=row.created_at,
            expires_at=row.expires_at,
            sent_at=row.sent_at,
            link=link,
        )


def _distinct(invitees: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in invitees:
        value = name.strip() if isinstance(name, str) else ""
        if value:
            seen.setdefault(value.lower() if "@" in value else value, None)
    return list(seen)


async def _resolve(conn: AsyncConnection, name: str) -> tuple[str | None, int | None]:
    """(the invitee as stored, the invited user's id): an e-mail address (lower case, no account), or an existing
    user's name; (None, None) when it is neither."""
    if "@" in name:
        try:
            return validate_email(name)[:MAX_EMAIL_LENGTH].lower(), None
        except Invalid:
            return None, None
    row = await find_account(conn, name, [USER])
    if row is None or row.disabled:
        return None, None
    return row.name, row.id


async def _is_member(conn: AsyncConnection, org_id: int, user_id: int) -> bool:
    found = await conn.execute(
        select(OrgMember.user_id).where(OrgMember.org_id == org_id, OrgMember.user_id == user_id)
    )
    return found.first() is not None


async def _require_team(conn: AsyncConnection, org_id: int, org: str, team: str) -> Row[Any]:
    row = (await conn.execute(select(Team).where(Team.org_id == org_id, Team.name == team))).first()
    if row is None:
        raise NotFound("team", "team not found", {"org": org, "team": team[:100]})
    return row


async def _team_name(conn: AsyncConnection, team_id: int | None) -> str | None:
    if team_id is None:
        return None
    return (await conn.execute(select(Team.name).where(Team.id == team_id))).scalar_one_or_none()


async def _invite_row(conn: AsyncConnection, invite_id: str) -> Row[Any]:
    return (await conn.execute(select(OrgInvite).where(OrgInvite.id == invite_id))).one()


async def _by_token(conn: AsyncConnection, token: str) -> Row[Any]:
    row = None
    if isinstance(token, str) and token.startswith(TOKEN_PREFIX) and len(token) <= 128:
        row = (await conn.execute(select(OrgInvite).where(OrgInvite.token_hash == fingerprint(token)))).first()
    if row is None:
        raise NotFound("invite", "invitation not found: it was used, declined or cancelled, or never existed")
    return row


async def _invitation(conn: AsyncConnection, row: Row[Any]) -> Invitation:
    org = (await conn.execute(select(Account.name).where(Account.id == row.org_id))).scalar_one()
    return Invitation(
        id=row.id,
        org=org,
        team=await _team_name(conn, row.team_id),
        role=row.role,
        inviter=row.inviter,
        invitee=row.invitee,
        expires_at=row.expires_at,
    )


@dataclass(frozen=True, slots=True)
class MailOrder:
    """What the ``invites.send`` job mails: the invite, its token and the address (the invited user's for an
    invite by name; None when that user has no e-mail address)."""

    invitation: Invitation
    token: str
    to: str | None


async def mail_order(db: Database, box: SecretBox, invite_id: str) -> MailOrder | None:
    """What to mail for the invite; None once it is gone or expired (nothing to send)."""
    async with db.read(consistent=True) as conn:
        row = (await conn.execute(select(OrgInvite).where(OrgInvite.id == invite_id))).first()
        if row is None:
            return None
        invitation = await _invitation(conn, row)
        if invitation.expired:
            return None
        to: str | None = row.invitee
        if row.invitee_id is not None:
            to = (await conn.execute(select(Account.email).where(Account.id == row.invitee_id))).scalar_one_or_none()
        return MailOrder(invitation, box.open(row.token_sealed).decode(), to or None)


async def mark_sent(db: Database, invite_id: str) -> None:
    async with db.write() as conn:
        await conn.execute(update(OrgInvite).where(OrgInvite.id == invite_id).values(sent_at=utcnow()))
