"""Namespaces and the accounts that own them: the one list of every table keyed by a namespace string, whether a
name is in use anywhere, the organization a site administrator's first push into an unowned namespace creates,
and what happens to a namespace when its account is deleted.

On a secure server a namespace exists only as an account (a user or an organization). Repositories, webhooks,
trusted keys and identities, trust policies, the managed signing key and the audit log all name their namespace
by string, so an account must never be created over rows some other account left behind, and an account's
deletion must take its rows with it (``purge_namespace``, ``retire_name``). ``--open`` servers keep no accounts:
there any push creates its repository and no organization.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, delete, false, insert, select, true, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.statements import insert_or_nothing
from dockyard.errors import Conflict, Denied, Subject
from dockyard.events.audit import audit_row, record_audits
from dockyard.models import (
    Account,
    AuditEntry,
    Build,
    BuildLink,
    ImmutabilityRule,
    NamespaceBlob,
    NamespaceSigningKey,
    NamespaceUsage,
    OrgMember,
    Proxy,
    Repository,
    ReservedName,
    RetentionPolicy,
    RetentionRun,
    TrustedIdentity,
    TrustedKey,
    TrustPolicy,
    VulnAllowlistEntry,
    VulnPolicy,
    VulnVex,
    Webhook,
)
from dockyard.models.accounts import ORG, USER
from dockyard.models.base import utcnow

# Every column that names a namespace, except ``accounts.name`` and the audit log (whose archived rows no
# longer count). A new namespace-keyed table goes here, and into ``purge_namespace``.
NAMESPACE_COLUMNS: tuple[Any, ...] = (
    Repository.namespace,
    Webhook.namespace,
    TrustedKey.namespace,
    TrustedIdentity.namespace,
    TrustPolicy.namespace,
    NamespaceSigningKey.namespace,
    VulnPolicy.namespace,
    VulnAllowlistEntry.namespace,
    VulnVex.namespace,
    NamespaceUsage.namespace,
    RetentionPolicy.namespace,
    ImmutabilityRule.namespace,
    Proxy.namespace,
    BuildLink.namespace,
    Build.namespace,
)
# The tables ``purge_namespace`` empties of a namespace's rows (repositories go first, through their own delete).
_PURGED = (
    Webhook,
    TrustedKey,
    TrustedIdentity,
    TrustPolicy,
    NamespaceSigningKey,
    VulnPolicy,
    VulnAllowlistEntry,
    VulnVex,
    NamespaceUsage,
    NamespaceBlob,
    RetentionPolicy,
    RetentionRun,
    ImmutabilityRule,
    Proxy,
    BuildLink,
    Build,
)

CLAIMED_BY_PUSH = "first push into a namespace without an account"

# The refusal of a push into a namespace no account owns (the /v2 guard and the upload/create paths say the same).
NO_NAMESPACE = "namespace does not exist"


@dataclass(frozen=True, slots=True)
class NameUse:
    """Why a name cannot be taken: an ``account`` has it, it is ``reserved`` (until ``until``) after an account of
    that name was deleted, or rows of other tables still name it as their namespace (``data``)."""

    kind: Literal["account", "reserved", "data"]
    until: datetime | None = None

    def conflict(self, name: str, subject: Subject = "account") -> Conflict:
        if self.kind == "reserved" and self.until is not None:
            return Conflict(
                subject,
                f"the name {name!r} is reserved until {self.until.isoformat(timespec='seconds')}: it belonged to "
                "an account that was deleted",
                {"name": name, "reserved_until": self.until.isoformat()},
            )
        if self.kind == "data":
            return Conflict(
                subject,
                "this name is already taken: repositories or settings of a namespace without an account use it "
                "(a site administrator may create the organization to adopt them)",
                {"name": name},
            )
        return Conflict(subject, "this name is already taken", {"name": name})


def _live_audit(namespace: str) -> ColumnElement[bool]:
    return (AuditEntry.namespace == namespace) & AuditEntry.archived_at.is_(None)


def reserved_until_sync(conn: Connection, name: str) -> datetime | None:
    """When ``name``'s reservation ends, if it is reserved now."""
    until: datetime | None = conn.execute(
        select(ReservedName.reserved_until).where(ReservedName.name == name)
    ).scalar_one_or_none()
    return until if until is not None and until > utcnow() else None


async def reserved_until(conn: AsyncConnection, name: str) -> datetime | None:
    """``reserved_until_sync`` in an async unit of work."""
    return await conn.run_sync(reserved_until_sync, name)


async def name_use(conn: AsyncConnection, name: str) -> NameUse | None:
    """What stops ``name`` from becoming a new account's, or None if it is free."""
    if (await conn.execute(select(Account.id).where(Account.name == name))).first() is not None:
        return NameUse("account")
    until = await reserved_until(conn, name)
    if until is not None:
        return NameUse("reserved", until)
    for column in NAMESPACE_COLUMNS:
        if (await conn.execute(select(true()).where(column == name).limit(1))).first() is not None:
            return NameUse("data")
    if (await conn.execute(select(AuditEntry.id).where(_live_audit(name)).limit(1))).first() is not None:
        return NameUse("data")
    return None


def forget_reservation_sync(conn: Connection, name: str) -> None:
    """Drop ``name``'s expired reservation (a new account takes the name)."""
    conn.execute(delete(ReservedName).where(ReservedName.name == name, ReservedName.reserved_until <= utcnow()))


async def forget_reservation(conn: AsyncConnection, name: str) -> None:
    """``forget_reservation_sync`` in an async unit of work."""
    await conn.run_sync(forget_reservation_sync, name)


def account_owns_sync(conn: Connection, namespace: str) -> bool:
    """A user or an organization is named ``namespace``."""
    found = conn.execute(select(Account.id).where(Account.name == namespace, Account.kind.in_((USER, ORG))).limit(1))
    return found.first() is not None


async def account_owns(conn: AsyncConnection, namespace: str) -> bool:
    """``account_owns_sync`` in an async unit of work."""
    return await conn.run_sync(account_owns_sync, namespace)


def may_create_in_sync(conn: Connection, namespace: str, actor: str | None) -> int | None:
    """Whether ``actor`` may create a repository in ``namespace`` on a secure server, without changing anything:
    None when an account owns the namespace; the administrator's account id when it does not and ``actor`` is a
    site administrator whose push would claim it. Raises ``Denied("account")`` "namespace does not exist"
    otherwise, and while the name is reserved after its account's deletion. Upload sessions ask this before any
    byte arrives; ``claim_namespace`` asks it again when the repository is created."""
    if account_owns_sync(conn, namespace):
        return None
    admin = conn.execute(
        select(Account.id).where(
            Account.name == (actor or ""),
            Account.kind == USER,
            Account.is_admin == true(),
            Account.disabled == false(),
        )
    ).scalar_one_or_none()
    if admin is None:
        raise Denied("account", NO_NAMESPACE, {"namespace": namespace[:255]})
    until = reserved_until_sync(conn, namespace)
    if until is not None:
        raise Denied(
            "account",
            f"{NO_NAMESPACE}: the name is reserved until {until.isoformat(timespec='seconds')} after "
            "its account was deleted",
            {"namespace": namespace, "reserved_until": until.isoformat()},
        )
    return int(admin)


def claim_namespace_sync(conn: Connection, namespace: str, actor: str | None) -> None:
    """Make sure an account owns ``namespace`` before a repository is created in it (secure servers).

    A namespace a user or an organization owns is fine. Otherwise only a site administrator may create a
    repository there, and doing so creates an organization of that name owned by them (so that ``library`` and
    mirrors have an owner), audited as ``org.create``. Raises ``Denied("account")`` "namespace does not exist"
    for anyone else, and for everyone while the name is reserved after its account's deletion.
    """
    admin = may_create_in_sync(conn, namespace, actor)
    if admin is None:
        return
    forget_reservation_sync(conn, namespace)
    now = utcnow()
    org_id = conn.execute(
        insert_or_nothing(conn, Account).values(name=namespace, kind=ORG, created_at=now).returning(Account.id)
    ).scalar_one_or_none()
    if org_id is None:
        return  # a concurrent push created it a moment ago
    conn.execute(insert(OrgMember).values(org_id=org_id, user_id=admin, role="owner", created_at=now))
    record_audits(
        conn,
        [
            audit_row(
                namespace,
                "org.create",
                actor=actor,
                target=namespace,
                data={"owner": actor, "reason": CLAIMED_BY_PUSH},
            )
        ],
    )


async def claim_namespace(conn: AsyncConnection, namespace: str, actor: str | None) -> None:
    """``claim_namespace_sync`` in an async unit of work."""
    await conn.run_sync(claim_namespace_sync, namespace, actor)


async def purge_namespace(conn: AsyncConnection, namespace: str) -> None:
    """Delete, in ``conn``'s transaction, every namespace-keyed row but the repositories (which the caller deletes
    first, with ``registry.repositories.delete_repositories``) and the audit log (``retire_name`` archives it):
    webhooks (their deliveries and attempts go by cascade), trusted keys and identities, trust policies and the
    managed signing key, vulnerability policies, allowlists and VEX statements, and the namespace's proxy setting."""
    for model in _PURGED:
        await conn.execute(delete(model).where(model.namespace == namespace))


async def retire_name(conn: AsyncConnection, name: str, account_id: int, kind: str, grace: timedelta) -> None:
    """After deleting account ``account_id`` named ``name``: archive the namespace's audit entries (kept, but no
    longer read as ``name``'s) and reserve the name for ``grace``."""
    now = utcnow()
    await conn.execute(
        update(AuditEntry).where(_live_audit(name)).values(archived_at=now, archived_account_id=account_id)
    )
    await conn.execute(delete(ReservedName).where(ReservedName.name == name))
    if grace > timedelta(0):
        await conn.execute(
            insert(ReservedName).values(
                name=name, account_id=account_id, kind=kind, created_at=now, reserved_until=now + grace
            )
        )
