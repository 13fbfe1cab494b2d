"""Creating a user account: the ``accounts`` row and its ``account.create`` audit entry, written the same way
whichever door the user came through — the Hub API and the CLI (``UserService``), self sign-up, SCIM
provisioning, a first OpenID Connect or LDAP sign-in. Each caller checks the name and the rest first, in the same
transaction."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.events.audit import record_audit
from dockyard.models import Account
from dockyard.models.accounts import USER
from dockyard.models.base import utcnow


async def insert_user(
    conn: AsyncConnection,
    name: str,
    *,
    actor: str,
    source_ip: str,
    email: str | None = None,
    password_hash: str | None = None,
    full_name: str = "",
    is_admin: bool = False,
    disabled: bool = False,
    auth_source: str | None = None,
    audit: Mapping[str, Any] | None = None,
) -> int:
    """Insert user ``name`` (no password: it signs in elsewhere) and audit ``account.create`` by ``actor`` with
    ``{"kind": "user", "is_admin": …}`` and ``audit`` (how it came); its account id."""
    now = utcnow()
    values: dict[str, Any] = {
        "name": name,
        "kind": USER,
        "email": email,
        "password_hash": password_hash,
        "full_name": full_name,
        "is_admin": is_admin,
        "disabled": disabled,
        "created_at": now,
    }
    if password_hash is not None:
        values["password_changed_at"] = now
    if auth_source is not None:
        values["auth_source"] = auth_source
    account_id: int = (await conn.execute(insert(Account).values(**values).returning(Account.id))).scalar_one()
    await record_audit(
        conn,
        name,
        "account.create",
        actor=actor,
        target=name,
        source_ip=source_ip,
        data={"kind": USER, "is_admin": is_admin, **(audit or {})},
    )
    return account_id
