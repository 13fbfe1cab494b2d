"""User accounts: creation (by site administrators, the first administrator at start-up, and self sign-up when
``allow_signup`` is on), profiles, passwords (a change ends every refresh and API token issued before), "revoke
sessions", site administration granted and removed, disabling and deletion.

Every change is authorized here, written to the audit log in the same transaction, and answered with a
``UserInfo``. Passwords are hashed (argon2id) before the write transaction starts, so that the hash's deliberate
cost never holds the database's writer lock.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, exists, false, func, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from dockyard.accounts.common import (
    delete_account,
    is_self,
    name_taken,
    paged,
    require_interactive,
    require_name_free,
    require_superuser,
    require_user,
    user_info,
)
from dockyard.accounts.creation import insert_user
from dockyard.accounts.names import (
    validate_email,
    validate_password,
    validate_profile_url,
    validate_text,
    validate_username,
)
from dockyard.accounts.snapshots import OWNER, UserInfo
from dockyard.auth.refresh import end_sessions
from dockyard.auth.secrets import hash_password, verify_secret
from dockyard.authz.principal import Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid
from dockyard.events.audit import record_audit
from dockyard.models import Account, OrgMember, Repository, Star
from dockyard.models.accounts import USER
from dockyard.models.base import utcnow
from dockyard.registry.repositories import drop_upload_objects
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore

SYSTEM_ACTOR = "dockyard"  # the audit actor of changes the server makes by itself (the first administrator)


class UserService:
    """Users. Site administrators (and the open server, i.e. the CLI) may do anything; a user may edit their own
    profile and password and delete their own account, with their own credentials (not an access token).

    Raises NotFound (no such user), Denied, Conflict (name taken, last administrator, sole owner of an
    organization) and Invalid (bad input)."""

    def __init__(self, db: Database, settings: Settings, store: BlobStore | None = None) -> None:
        self._db = db
        self._settings = settings
        self._store = store  # where a deleted user's upload objects are dropped
        self._grace = timedelta(days=settings.deleted_name_grace_days)

    async def create_user(
        self,
        name: str,
        email: str | None,
        password: str,
        *,
        is_admin: bool = False,
        actor: Principal,
        source_ip: str = "",
    ) -> UserInfo:
        """Create a user (site administrators only; people create their own accounts with ``sign_up``)."""
        require_superuser(actor, "create users")
        name = validate_username(name)
        email = validate_email(email) if email else None
        password_hash = await hash_password(validate_password(password))
        return await self._insert_user(name, email, password_hash, is_admin, actor.audit_name, source_ip)

    async def sign_up(self, name: str, email: str, password: str, *, source_ip: str = "") -> UserInfo:
        """Self sign-up: a new user creates their own account (not an administrator), with the validation and
        password policy of ``create_user``. ``Denied`` unless the ``allow_signup`` setting is on; audited as
        ``account.create`` by the new user, ``via: signup``. The caller throttles attempts (the web page counts
        each as a password attempt of the login throttle)."""
        if not self._settings.allow_signup:
            raise Denied("account", "self sign-up is off on this server")
        name = validate_username(name)
        if not email.strip():
            raise Invalid("account", "an e-mail address is required", {"field": "email"})
        address = validate_email(email)
        password_hash = await hash_password(validate_password(password))
        return await self._insert_user(name, address, password_hash, False, name, source_ip, via="signup")

    async def _insert_user(
        self,
        name: str,
        email: str | None,
        password_hash: str,
        is_admin: bool,
        actor: str,
        source_ip: str,
        *,
        via: str | None = None,
    ) -> UserInfo:
        try:
            async with self._db.write() as conn:
                await require_name_free(conn, name, "account")
                account_id = await _insert_account(
                    conn, name, email, password_hash, is_admin, actor, source_ip, via=via
                )
                row = (await conn.execute(select(Account).where(Account.id == account_id))).one()
        except IntegrityError as exc:  # a concurrent creation of the same name (PostgreSQL)
            raise Conflict("account", "this name is already taken", {"name": name}) from exc
        return user_info(row)

    async def get_user(self, name: str) -> UserInfo:
        """A user's account (profiles are public; surfaces decide which fields a caller sees)."""
        async with self._db.read() as conn:
            return user_info(await require_user(conn, name))

    async def update_profile(
        self,
        name: str,
        *,
        full_name: str | None = None,
        company: str | None = None,
        location: str | None = None,
        profile_url: str | None = None,
        email: str | None = None,
        actor: Principal,
        source_ip: str = "",
    ) -> UserInfo:
        """Change the given profile fields (None: unchanged; "" clears, except the e-mail address)."""
        values: dict[str, Any] = {}
        if full_name is not None:
            values["full_name"] = validate_text(full_name, "full_name")
        if company is not None:
            values["company"] = validate_text(company, "company")
        if location is not None:
            values["location"] = validate_text(location, "location")
        if profile_url is not None:
            values["profile_url"] = validate_profile_url(profile_url)
        if email is not None:
            values["email"] = validate_email(email)
        async with self._db.write() as conn:
            row = await require_user(conn, name)
            self._require_self_or_admin(actor, row.id, "change this profile")
            if values:
                await conn.execute(update(Account).where(Account.id == row.id).values(**values))
                await record_audit(
                    conn,
                    name,
                    "account.update",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                    data={"fields": sorted(values)},
                )
            row = (await conn.execute(select(Account).where(Account.id == row.id))).one()
        return user_info(row)

    async def change_password(
        self,
        name: str,
        new: str,
        *,
        current: str | None = None,
        actor: Principal,
        source_ip: str = "",
        check_current: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """Set a new password. Users changing their own must give the current one; administrators changing
        someone else's (and the CLI) need not. ``check_current`` verifies it (the HTTP surface passes the
        authenticator's throttled check); without it the stored hash is compared directly."""
        validate_password(new)
        async with self._db.read() as conn:
            row = await require_user(conn, name)
        self._require_self_or_admin(actor, row.id, "change this password")
        if row.auth_source is not None:  # e.g. LDAP: the directory checks the password, a local one is never used
            raise Invalid("credentials", f"this account's password is managed by its directory ({row.auth_source})")
        if is_self(actor, row.id):
            if current is None:
                raise Invalid("credentials", "give the current password to change it", {"field": "current_password"})
            matches = (
                await check_current(current)
                if check_current is not None
                else await verify_secret(row.password_hash, current)
            )
            if not matches:
                raise Denied("credentials", "the current password is incorrect")
        password_hash = await hash_password(new)
        async with self._db.write() as conn:
            await require_user(conn, name)
            await conn.execute(
                update(Account)
                .where(Account.id == row.id)
                .values(password_hash=password_hash, password_changed_at=utcnow())
            )
            await end_sessions(conn, row.id)
            await record_audit(
                conn, name, "account.password_change", actor=actor.audit_name, target=name, source_ip=source_ip
            )

    async def revoke_sessions(self, name: str, *, actor: Principal, source_ip: str = "") -> None:
        """Sign out everywhere: every refresh token and every API token issued to the user before now is refused
        (personal access tokens stay; registry tokens already issued run out within their short lifetime). The
        user themselves, with their own credentials, or a site administrator."""
        async with self._db.write() as conn:
            row = await require_user(conn, name)
            self._require_self_or_admin(actor, row.id, "revoke this user's sessions")
            await end_sessions(conn, row.id)
            await record_audit(
                conn, name, "user.revoke_sessions", actor=actor.audit_name, target=name, source_ip=source_ip
            )

    async def set_disabled(self, name: str, disabled: bool, *, actor: Principal, source_ip: str = "") -> UserInfo:
        """Disable (sign-ins, tokens and sessions stop working at once) or enable a user. Administrators only;
        nobody disables their own account, nor the last enabled administrator."""
        require_superuser(actor, "disable or enable users")
        async with self._db.write() as conn:
            row = await require_user(conn, name)
            if disabled and is_self(actor, row.id):
                raise Conflict("account", "you cannot disable your own account")
            if disabled and row.is_admin and not row.disabled:
                await self._require_another_admin(conn, row.id)
            if bool(row.disabled) != disabled:
                await conn.execute(update(Account).where(Account.id == row.id).values(disabled=disabled))
                await record_audit(
                    conn,
                    name,
                    "account.disable" if disabled else "account.enable",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                )
            row = (await conn.execute(select(Account).where(Account.id == row.id))).one()
        return user_info(row)

    async def set_admin(self, name: str, is_admin: bool, *, actor: Principal, source_ip: str = "") -> UserInfo:
        """Make a user a site administrator or remove that. Administrators only; nobody removes their own, nor the
        last enabled administrator's."""
        require_superuser(actor, "grant or remove site administration")
        async with self._db.write() as conn:
            row = await require_user(conn, name)
            if not is_admin and is_self(actor, row.id):
                raise Conflict("account", "you cannot remove your own site administration")
            if not is_admin and row.is_admin and not row.disabled:
                await self._require_another_admin(conn, row.id)
            if bool(row.is_admin) != is_admin:
                await conn.execute(update(Account).where(Account.id == row.id).values(is_admin=is_admin))
                if not is_admin:  # tokens issued while an administrator end, as at a password change
                    await end_sessions(conn, row.id)
                await record_audit(
                    conn,
                    name,
                    "account.admin_grant" if is_admin else "account.admin_revoke",
                    actor=actor.audit_name,
                    target=name,
                    source_ip=source_ip,
                )
            row = (await conn.execute(select(Account).where(Account.id == row.id))).one()
        return user_info(row)

    async def delete_user(self, name: str, *, actor: Principal, source_ip: str = "") -> list[str]:
        """Delete a user and everything their namespace holds (``delete_account``: repositories with
        ``repository.deleted`` each, webhooks, trust settings; the audit log archived, the name reserved for the
        grace period); memberships, team seats, tokens, stars and grants go with the account. Refused (Conflict)
        while the user is the sole owner of an organization, or the last enabled administrator. Returns the
        repositories deleted."""

        async def work(conn: AsyncConnection) -> tuple[list[str], list[str]]:
            row = await require_user(conn, name)
            self._require_self_or_admin(actor, row.id, "delete this account")
            if row.is_admin and not row.disabled:
                await self._require_another_admin(conn, row.id)
            sole = await _orgs_solely_owned(conn, row.id)
            if sole:
                raise Conflict(
                    "member",
                    "the user is the only owner of an organization: add another owner or delete it first",
                    {"organizations": sole},
                )
            # Stars are counted on the repository row; the star rows themselves go by cascade.
            await conn.execute(
                update(Repository)
                .where(
                    Repository.id.in_(select(Star.repository_id).where(Star.account_id == row.id)),
                    Repository.star_count > 0,
                )
                .values(star_count=Repository.star_count - 1)
            )
            return await delete_account(
                conn, row, action="account.delete", actor=actor.audit_name, source_ip=source_ip, grace=self._grace
            )

        # Retried on a PostgreSQL deadlock: the deletion meets the webhook and signature workers on the same rows.
        deleted, uploads = await self._db.run_write(work)
        await drop_upload_objects(self._store, uploads)
        return deleted

    async def list_users(self, page: PageRequest, *, actor: Principal, query: str = "") -> Page[UserInfo]:
        """All users by name, or those whose name or e-mail address contains ``query`` (any case); site
        administrators only."""
        require_superuser(actor, "list users")
        statement = select(Account).where(Account.kind == USER)
        if query:
            needle = query.lower()
            statement = statement.where(
                or_(
                    func.lower(Account.name).contains(needle, autoescape=True),
                    func.lower(Account.email).contains(needle, autoescape=True),
                )
            )
        async with self._db.read(consistent=True) as conn:
            return await paged(conn, statement.order_by(Account.name), page, user_info)

    async def ensure_admin(self, username: str, password: str | None) -> str | None:
        """On first start: if no administrator exists, create ``username`` as one, with ``password`` or a generated
        password, which is returned (for the caller to print once). Returns None when an administrator existed or
        the password was given. Safe when several replicas start at once."""
        async with self._db.read() as conn:
            if await _admin_exists(conn):
                return None
        name = validate_username(username)
        generated = None if password else secrets.token_urlsafe(18)
        password_hash = await hash_password(validate_password(password or generated or ""))
        try:
            async with self._db.write() as conn:
                if await _admin_exists(conn):
                    return None
                if await name_taken(conn, name):
                    # On PostgreSQL each statement sees the latest commits: a replica starting alongside may have
                    # created the administrator between the check above and this one. Then there is nothing to do.
                    if await _admin_exists(conn):
                        return None
                    raise Conflict(
                        "account",
                        f"no administrator exists and the name {name!r} is taken by a non-administrator: choose "
                        "another admin_username or create an administrator with `dockyard user create --admin`",
                        {"name": name},
                    )
                await _insert_account(conn, name, None, password_hash, True, SYSTEM_ACTOR, "")
        except IntegrityError:
            return None  # another replica created it first
        return generated

    @staticmethod
    def _require_self_or_admin(actor: Principal, account_id: int, what: str) -> None:
        require_interactive(actor, what)
        if not actor.superuser and not is_self(actor, account_id):
            raise Denied("account", f"only the user or a site administrator may {what}")

    @staticmethod
    async def _require_another_admin(conn: AsyncConnection, account_id: int) -> None:
        others = (
            await conn.execute(
                select(Account.id)
                .where(
                    Account.kind == USER,
                    Account.is_admin == true(),
                    Account.disabled == false(),
                    Account.id != account_id,
                )
                .limit(1)
                .with_for_update()
            )
        ).first()
        if others is None:
            raise Conflict("account", "this is the last enabled site administrator")


async def _admin_exists(conn: AsyncConnection) -> bool:
    found = (
        await conn.execute(select(Account.id).where(Account.kind == USER, Account.is_admin == true()).limit(1))
    ).first()
    return found is not None


async def _orgs_solely_owned(conn: AsyncConnection, user_id: int) -> list[str]:
    """Names of the organizations whose only owner is ``user_id``."""
    other = aliased(OrgMember)
    rows = await conn.execute(
        select(Account.name)
        .join(OrgMember, OrgMember.org_id == Account.id)
        .where(
            OrgMember.user_id == user_id,
            OrgMember.role == OWNER,
            ~exists().where(and_(other.org_id == OrgMember.org_id, other.role == OWNER, other.user_id != user_id)),
        )
        .order_by(Account.name)
    )
    return [name for (name,) in rows]


async def _insert_account(
    conn: AsyncConnection,
    name: str,
    email: str | None,
    password_hash: str,
    is_admin: bool,
    actor: str,
    source_ip: str,
    *,
    via: str | None = None,
) -> int:
    return await insert_user(
        conn,
        name,
        actor=actor,
        source_ip=source_ip,
        email=email,
        password_hash=password_hash,
        is_admin=is_admin,
        audit={"via": via} if via else None,
    )
