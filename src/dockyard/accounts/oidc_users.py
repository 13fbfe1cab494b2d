"""The Dockyard side of single sign-on: which user a verified OpenID sign-in (``auth.oidc.OidcSignIn``) is, the
groups → teams sync, and the CLI secret of single sign-on users.

A sign-in is one transaction. The identity (issuer, ``sub``) already linked to a user is that user. Otherwise
the user name claim (``oidc_username_claim``, else ``email``, else ``sub``) names the account: an existing user
of that exact name — pre-provisioned by an administrator or through SCIM — is linked to the identity
(``oidc.user.link``), unless it is a site administrator (the provider never signs in as the local administrator);
with no such user, or one linked to another identity already, ``oidc_auto_create_users`` creates one without a
password (``oidc.user.create``; its name from ``attributes.account_names``, as SCIM's: the claim itself, else a
free variant), else the sign-in is refused. A disabled account is refused. Refusals raise
``auth.oidc.OidcRefused``; one that names an existing account (an administrator, a disabled account, one linked
to another identity) is also ``login.failure`` ``{"via": "oidc"}`` in that account's audit log.

Groups (``oidc_groups_claim``, when the claim is present) are synced at every sign-in: a group named ``org/team``
is that team, and ``oidc_team_mapping`` maps other names; the teams that exist are joined (the organization too, as
a member, if needed) and each membership so given is remembered in ``oidc_team_grants``; a remembered membership
whose group is gone is removed. Memberships an owner gave by hand are never touched. Every change is audited in
the organization's log with the actor ``oidc`` (``team.member.add``/``remove``, ``org.member.add``).

The CLI secret (Harbor's model): a single sign-on user has no password for ``docker login``; they use their user
name and the CLI secret shown on their settings page (``dy_cli_`` + 256 random bits, sealed with the server
secret so that it can be shown again; its SHA-256 is what ``auth.credentials`` compares). Regenerating it
replaces it at once.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.creation import insert_user
from dockyard.accounts.names import ACCOUNT_NAME_RE
from dockyard.accounts.scim_attributes import account_names
from dockyard.accounts.snapshots import MEMBER
from dockyard.auth.oidc_results import OidcRefused, OidcSignIn
from dockyard.auth.secrets import CLI_PREFIX, SecretBox, fingerprint, new_token
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Denied, NotFound, Unauthorized
from dockyard.events.audit import record_audit
from dockyard.models import Account, OidcIdentity, OidcTeamGrant, OrgMember, Team, TeamMember
from dockyard.models.accounts import ORG, USER
from dockyard.models.base import utcnow
from dockyard.registry.namespaces import forget_reservation, name_use
from dockyard.settings import Settings

ACTOR = "oidc"  # the audit actor of changes the provider's claims make
MAX_GROUPS = 500


class OidcAccounts:
    """Users and teams from single sign-on, and CLI secrets. Safe for concurrent use."""

    def __init__(self, db: Database, settings: Settings, box: SecretBox) -> None:
        self._db = db
        self._settings = settings
        self._box = box

    async def sign_in(self, signed: OidcSignIn, source_ip: str = "") -> int:
        """The id of the user ``signed`` is (linked or created as the settings say), with its team memberships
        synced. Raises ``OidcRefused``."""
        try:
            async with self._db.write() as conn:
                account = await self._account_for(conn, signed, source_ip)
                groups = _groups(signed.claims.get(self._settings.oidc_groups_claim))
                await conn.execute(
                    update(OidcIdentity)
                    .where(OidcIdentity.account_id == account.id)
                    .values(last_sign_in_at=utcnow(), groups=json.dumps(groups if groups is not None else []))
                )
                if groups is not None and self._settings.oidc_groups_claim:
                    await self._sync_teams(conn, account.id, account.name, groups, source_ip)
                return int(account.id)
        except IntegrityError as exc:  # a concurrent first sign-in of the same identity or name (PostgreSQL)
            raise OidcRefused("another sign-in of this account is under way; try again") from exc
        except OidcRefused as refused:
            if refused.account is not None:  # recorded after the sign-in's transaction rolled back
                async with self._db.write() as conn:
                    await record_audit(
                        conn,
                        refused.account,
                        "login.failure",
                        actor=refused.account,
                        target=refused.account,
                        source_ip=source_ip,
                        data={"via": "oidc", "reason": str(refused), "subject": signed.subject},
                    )
            raise

    async def _account_for(self, conn: AsyncConnection, signed: OidcSignIn, source_ip: str) -> Any:
        linked = (
            await conn.execute(
                select(Account)
                .join(OidcIdentity, OidcIdentity.account_id == Account.id)
                .where(OidcIdentity.issuer == signed.issuer, OidcIdentity.subject == signed.subject)
            )
        ).first()
        if linked is not None:
            if linked.disabled:
                raise OidcRefused("this account is disabled", linked.name)
            return linked
        wanted = _claimed_name(signed.claims, self._settings.oidc_username_claim)
        exact = wanted.strip().lower()
        existing = (
            (await conn.execute(select(Account).where(Account.name == exact, Account.kind == USER))).first()
            if ACCOUNT_NAME_RE.match(exact)
            else None
        )
        if existing is not None:
            if existing.is_admin:
                raise OidcRefused(f"{exact} is a site administrator, who signs in with a password only", exact)
            if existing.disabled:
                raise OidcRefused("this account is disabled", exact)
            other = (
                await conn.execute(select(OidcIdentity.subject).where(OidcIdentity.account_id == existing.id))
            ).first()
            if other is None:
                await self._link(conn, existing.id, existing.name, signed, "oidc.user.link", source_ip)
                return existing
            if not self._settings.oidc_auto_create_users:
                raise OidcRefused(f"the account {exact} is linked to another single sign-on identity", exact)
        if not self._settings.oidc_auto_create_users:
            raise OidcRefused(
                f"there is no Dockyard account for {wanted[:100]!r}; an administrator must create it before you sign in"
            )
        name = await _free_name(conn, wanted)
        email = signed.claims.get("email")
        full_name = signed.claims.get("name")
        account_id = await insert_user(
            conn,
            name,
            actor=ACTOR,
            source_ip=source_ip,
            email=email[:320] if isinstance(email, str) and "@" in email else None,
            full_name=full_name[:255] if isinstance(full_name, str) else "",
            audit={"oidc": signed.issuer},
        )
        await self._link(conn, account_id, name, signed, "oidc.user.create", source_ip)
        return (await conn.execute(select(Account).where(Account.id == account_id))).one()

    async def _link(
        self, conn: AsyncConnection, account_id: int, name: str, signed: OidcSignIn, action: str, source_ip: str
    ) -> None:
        secret = new_token(CLI_PREFIX)
        now = utcnow()
        await conn.execute(
            insert(OidcIdentity).values(
                account_id=account_id,
                issuer=signed.issuer,
                subject=signed.subject,
                cli_secret=self._box.seal(secret.encode()),
                cli_secret_hash=fingerprint(secret),
                groups="[]",
                created_at=now,
                last_sign_in_at=now,
            )
        )
        await record_audit(
            conn,
            name,
            action,
            actor=ACTOR,
            target=name,
            source_ip=source_ip,
            data={"issuer": signed.issuer, "subject": signed.subject},
        )

    async def _sync_teams(
        self, conn: AsyncConnection, account_id: int, username: str, groups: list[str], source_ip: str
    ) -> None:
        wanted: dict[int, tuple[str, int, str, str]] = {}  # team id → (org, org id, team, group)
        mapping = self._settings.oidc_team_map
        for group in groups:
            for target in ([group] if "/" in group else []) + mapping.get(group, []):
                found = await _find_team(conn, target)
                if found is not None:
                    wanted.setdefault(found[0], (*found[1:], group))
        granted = {
            row.team_id: row
            for row in (
                await conn.execute(
                    select(OidcTeamGrant.team_id, Team.name, Account.name.label("org"), OidcTeamGrant.group_name)
                    .join(Team, Team.id == OidcTeamGrant.team_id)
                    .join(Account, Account.id == Team.org_id)
                    .where(OidcTeamGrant.account_id == account_id)
                )
            ).all()
        }
        for team_id, (org, org_id, team, group) in wanted.items():
            if team_id in granted:
                continue
            values = {"org_id": org_id, "user_id": account_id, "role": MEMBER, "created_at": utcnow()}
            if await insert_ignore(conn, OrgMember, values):
                await record_audit(
                    conn, org, "org.member.add", actor=ACTOR, target=username, source_ip=source_ip,
                    data={"role": MEMBER},
                )  # fmt: skip
            if not await insert_ignore(conn, TeamMember, {"team_id": team_id, "user_id": account_id}):
                continue  # a member already, by an owner's hand: the group did not give it, and will not take it
            await conn.execute(
                insert(OidcTeamGrant).values(
                    account_id=account_id, team_id=team_id, group_name=group[:255], created_at=utcnow()
                )
            )
            await record_audit(
                conn, org, "team.member.add", actor=ACTOR, target=username, source_ip=source_ip,
                data={"team": team, "group": group},
            )  # fmt: skip
        for team_id, row in granted.items():
            if team_id in wanted:
                continue
            await conn.execute(
                delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == account_id)
            )
            await conn.execute(
                delete(OidcTeamGrant).where(OidcTeamGrant.account_id == account_id, OidcTeamGrant.team_id == team_id)
            )
            await record_audit(
                conn, row.org, "team.member.remove", actor=ACTOR, target=username, source_ip=source_ip,
                data={"team": row.name, "group": row.group_name},
            )  # fmt: skip

    async def cli_secret(self, actor: Principal) -> str | None:
        """The signed-in user's CLI secret, or None when the user has no single sign-on identity."""
        account_id = _own_account(actor)
        async with self._db.read() as conn:
            sealed = (
                await conn.execute(select(OidcIdentity.cli_secret).where(OidcIdentity.account_id == account_id))
            ).scalar_one_or_none()
        return None if sealed is None else self._box.open(sealed).decode()

    async def regenerate_cli_secret(self, actor: Principal, source_ip: str = "") -> str:
        """A new CLI secret for the signed-in user (the old one stops working at once). NotFound when the user
        has no single sign-on identity."""
        account_id = _own_account(actor)
        secret = new_token(CLI_PREFIX)
        async with self._db.write() as conn:
            changed = await conn.execute(
                update(OidcIdentity)
                .where(OidcIdentity.account_id == account_id)
                .values(cli_secret=self._box.seal(secret.encode()), cli_secret_hash=fingerprint(secret))
            )
            if changed.rowcount != 1:
                raise NotFound("account", "only single sign-on users have a CLI secret")
            await record_audit(
                conn, actor.name, "oidc.cli_secret.regenerate", actor=actor.audit_name, target=actor.name,
                source_ip=source_ip,
            )  # fmt: skip
        return secret


def _own_account(actor: Principal) -> int:
    if not actor.is_authenticated or actor.account_id is None or actor.kind != "user":
        raise Unauthorized("credentials", "sign in first")
    if actor.token_id is not None:
        raise Denied("account", "the CLI secret is shown to a signed-in user, not to a token")
    return actor.account_id


def _claimed_name(claims: dict[str, Any], claim: str) -> str:
    for key in (claim, "email", "sub"):
        value = claims.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:255]
    raise OidcRefused("the provider sent no user name")


def _groups(value: Any) -> list[str] | None:
    """The groups claim as a list of names; None when the provider did not send it (nothing is synced)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return sorted({item.strip() for item in value[:MAX_GROUPS] if isinstance(item, str) and item.strip()})


async def _find_team(conn: AsyncConnection, target: str) -> tuple[int, str, int, str] | None:
    """(team id, organization, organization id, team) of ``org/team``, or None if either does not exist."""
    org, _, team = target.partition("/")
    row = (
        await conn.execute(
            select(Team.id, Account.name, Account.id.label("org_id"), Team.name.label("team"))
            .join(Account, Account.id == Team.org_id)
            .where(Account.name == org.strip().lower(), Account.kind == ORG, Team.name == team.strip())
        )
    ).first()
    return None if row is None else (row.id, row.name, row.org_id, row.team)


async def _free_name(conn: AsyncConnection, wanted: str) -> str:
    for candidate in account_names(wanted):
        if await name_use(conn, candidate) is None:
            await forget_reservation(conn, candidate)
            return candidate
    raise OidcRefused("no free account name could be made from the provider's user name")
