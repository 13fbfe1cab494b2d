"""LDAP users' accounts: the ``PasswordDirectory`` the authenticator asks (``auth.credentials``) when LDAP is
configured. A password the directory accepts (``auth.ldap.LdapDirectory``) signs in as the account of that name:

- created on the first sign-in when ``ldap_create_users`` is on (else refused): a user with no local password,
  ``auth_source = "ldap"``, its e-mail from the directory; a name that is not a valid Dockyard user name, or
  that a local account, an organization or a reserved name holds, is refused;
- at every sign-in, its e-mail follows the directory's, and its teams follow its groups: for each
  ``ldap_group_teams`` entry, a member of the group is put in the team (joining the organization as a member if
  needed) and a non-member is taken out of it. Teams no entry names are never touched; leaving a team does not
  leave the organization. Every change is in the audit log (actor ``ldap``), in the sign-in's transaction.

An entry naming an organization or team that does not exist is skipped (and logged): it is not the user's fault.
"""

from __future__ import annotations

import logging

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.accounts.common import require_name_free
from dockyard.accounts.creation import insert_user
from dockyard.accounts.names import validate_username
from dockyard.accounts.snapshots import MEMBER
from dockyard.auth.ldap import DirectoryUser, LdapDirectory
from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import Conflict, Invalid
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgMember, Team, TeamMember
from dockyard.models.accounts import ORG, USER
from dockyard.models.base import utcnow
from dockyard.settings import Settings

log = logging.getLogger("dockyard.accounts.ldap")

SOURCE = "ldap"
ACTOR = "ldap"  # the audit log's actor of what a sign-in changes


class LdapSignIn:
    """The LDAP ``PasswordDirectory`` (see the module docstring)."""

    source = SOURCE

    def __init__(self, db: Database, settings: Settings, directory: LdapDirectory | None = None) -> None:
        self._db = db
        self._settings = settings
        self._directory = directory or LdapDirectory(settings)
        self._mapping = settings.ldap_team_mapping

    async def sign_in(self, username: str, password: str, source_ip: str) -> int | None:
        """The account id ``username`` signs in as, or None. Raises ``DirectoryUnavailable``."""
        user = await self._directory.authenticate(username, password)
        if user is None:
            return None
        for attempt in range(2):
            try:
                async with self._db.write() as conn:
                    account_id = await self._account(conn, username, user, source_ip)
                    if account_id is not None:
                        await self._sync_teams(conn, account_id, username, user.groups, source_ip)
                    return account_id
            except IntegrityError:  # a concurrent first sign-in created the account (PostgreSQL): use it
                if attempt:
                    raise
        return None

    async def _account(self, conn: AsyncConnection, username: str, user: DirectoryUser, source_ip: str) -> int | None:
        row = (
            await conn.execute(
                select(Account.id, Account.kind, Account.auth_source, Account.email).where(Account.name == username)
            )
        ).first()
        if row is not None:
            if row.kind != USER or row.auth_source != SOURCE:
                log.warning("LDAP user %r has the name of a local account; refused", username)
                return None
            if user.email is not None and user.email != row.email:
                await conn.execute(update(Account).where(Account.id == row.id).values(email=user.email[:320]))
            account_id: int = row.id
            return account_id
        if not self._settings.ldap_create_users:
            log.info("LDAP user %r has no account and ldap_create_users is off; refused", username)
            return None
        try:
            validate_username(username)
            await require_name_free(conn, username, "account")
        except (Invalid, Conflict) as exc:
            log.warning("LDAP user %r cannot have an account: %s", username, exc.message)
            return None
        return await insert_user(
            conn,
            username,
            actor=ACTOR,
            source_ip=source_ip,
            email=user.email[:320] if user.email else None,
            auth_source=SOURCE,
            audit={"auth_source": SOURCE},
        )

    async def _sync_teams(
        self, conn: AsyncConnection, user_id: int, username: str, groups: frozenset[str], source_ip: str
    ) -> None:
        wanted: dict[tuple[str, str], bool] = {}
        for entry in self._mapping:
            key = (entry.org, entry.team)
            wanted[key] = wanted.get(key, False) or entry.group in groups
        for (org, team), member in sorted(wanted.items()):
            found = (
                await conn.execute(
                    select(Account.id, Team.id.label("team_id"))
                    .join(Team, Team.org_id == Account.id)
                    .where(Account.name == org, Account.kind == ORG, Team.name == team)
                )
            ).first()
            if found is None:
                log.warning("ldap_group_teams names %s/%s, which does not exist; skipped", org, team)
                continue
            in_team = (
                await conn.execute(
                    select(TeamMember.user_id).where(TeamMember.team_id == found.team_id, TeamMember.user_id == user_id)
                )
            ).first() is not None
            if member and not in_team:
                await self._join_org(conn, found.id, org, user_id, username, source_ip)
                await insert_ignore(conn, TeamMember, {"team_id": found.team_id, "user_id": user_id})
                await record_audit(
                    conn,
                    org,
                    "team.member.add",
                    actor=ACTOR,
                    target=username,
                    source_ip=source_ip,
                    data={"team": team, "via": SOURCE},
                )
            elif in_team and not member:
                await conn.execute(
                    delete(TeamMember).where(TeamMember.team_id == found.team_id, TeamMember.user_id == user_id)
                )
                await record_audit(
                    conn,
                    org,
                    "team.member.remove",
                    actor=ACTOR,
                    target=username,
                    source_ip=source_ip,
                    data={"team": team, "via": SOURCE},
                )

    @staticmethod
    async def _join_org(
        conn: AsyncConnection, org_id: int, org: str, user_id: int, username: str, source_ip: str
    ) -> None:
        values = {"org_id": org_id, "user_id": user_id, "role": MEMBER, "created_at": utcnow()}
        if await insert_ignore(conn, OrgMember, values):
            await record_audit(
                conn,
                org,
                "org.member.add",
                actor=ACTOR,
                target=username,
                source_ip=source_ip,
                data={"role": MEMBER, "via": SOURCE},
            )
