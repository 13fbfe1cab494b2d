"""Factories for account-service tests: a migrated database on the test backend, users, organizations,
repositories and principals written straight into the tables (fast: no argon2 per user), and audit-log reads."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select

from dockyard.accounts.access_tokens import AccessTokenService
from dockyard.accounts.collaborators import CollaboratorService
from dockyard.accounts.orgs import OrgService
from dockyard.accounts.robots import RobotService
from dockyard.accounts.teams import TeamService
from dockyard.accounts.users import UserService
from dockyard.auth.secrets import hash_password_sync
from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.migrations.runner import upgrade
from dockyard.models import Account, AuditEntry, Event, OrgMember, Repository
from dockyard.models.accounts import ORG, USER
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support import backend
from tests.support.schema import seed_sqlite

PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password_sync(PASSWORD)


def database_url(tmp_path: Path, *, migrated: bool = False) -> str:
    """A new database on the test backend: empty, or ``migrated`` (a copy of a template, tests/support/schema.py)."""
    if backend.is_scaleout():
        from tests.support.postgres import shared_cluster

        return shared_cluster().create_database("accounts", migrated=migrated)
    if migrated:
        seed_sqlite(tmp_path / "dockyard.db")
    return f"sqlite+aiosqlite:///{tmp_path / 'dockyard.db'}"


async def migrated_database(tmp_path: Path) -> Database:
    db = Database(database_url(tmp_path, migrated=True))
    await upgrade(db)  # nothing to do: a check that the copy is current
    return db


@dataclass(frozen=True)
class Services:
    users: UserService
    orgs: OrgService
    teams: TeamService
    robots: RobotService
    tokens: AccessTokenService
    collaborators: CollaboratorService


def services(db: Database, settings: Settings) -> Services:
    return Services(
        UserService(db, settings),
        OrgService(db, settings),
        TeamService(db, settings),
        RobotService(db, settings),
        AccessTokenService(db, settings),
        CollaboratorService(db, settings),
    )


async def make_user(db: Database, name: str, *, admin: bool = False, disabled: bool = False) -> Principal:
    """A user whose password is ``PASSWORD``, and the principal of a password sign-in as them."""
    async with db.write() as conn:
        account_id = (
            await conn.execute(
                insert(Account)
                .values(
                    name=name,
                    kind=USER,
                    email=f"{name}@example.com",
                    password_hash=_PASSWORD_HASH,
                    password_changed_at=utcnow(),
                    is_admin=admin,
                    disabled=disabled,
                    created_at=utcnow(),
                )
                .returning(Account.id)
            )
        ).scalar_one()
    return Principal("user", account_id, name, admin)


async def make_org(db: Database, name: str, *, owners: list[Principal], members: list[Principal] | None = None) -> int:
    async with db.write() as conn:
        org_id: int = (
            await conn.execute(insert(Account).values(name=name, kind=ORG, created_at=utcnow()).returning(Account.id))
        ).scalar_one()
        for principal, role in [(p, "owner") for p in owners] + [(p, "member") for p in members or []]:
            await conn.execute(
                insert(OrgMember).values(org_id=org_id, user_id=principal.account_id, role=role, created_at=utcnow())
            )
    return org_id


async def make_repo(db: Database, name: str, *, private: bool = True) -> int:
    namespace = name.partition("/")[0] if "/" in name else "library"
    async with db.write() as conn:
        repo_id: int = (
            await conn.execute(
                insert(Repository)
                .values(name=name, namespace=namespace, is_private=private, created_at=utcnow())
                .returning(Repository.id)
            )
        ).scalar_one()
    return repo_id


def with_token(principal: Principal, *scopes: str, repositories: list[str] | None = None) -> Principal:
    """The same account, authenticated with a personal access token of ``scopes``."""
    return replace(
        principal,
        token_id="00000000-0000-0000-0000-000000000001",
        token_scopes=frozenset(scopes),
        token_repositories=frozenset(repositories) if repositories is not None else None,
    )


async def audit(db: Database, namespace: str | None = None, *, logins: bool = False) -> list[dict[str, Any]]:
    """Audit entries (oldest first), optionally of one namespace; sign-ins only if ``logins``."""
    query = select(AuditEntry).order_by(AuditEntry.id)
    if not logins:
        query = query.where(AuditEntry.action.not_like("login.%"))
    if namespace is not None:
        query = query.where(AuditEntry.namespace == namespace)
    async with db.read() as conn:
        rows = (await conn.execute(query)).all()
    return [
        {
            "namespace": r.namespace,
            "action": r.action,
            "actor": r.actor,
            "target": r.target,
            "source_ip": r.source_ip,
            "data": json.loads(r.data),
        }
        for r in rows
    ]


async def events(db: Database, event_type: str) -> list[str | None]:
    async with db.read() as conn:
        rows = await conn.execute(select(Event.repository).where(Event.type == event_type).order_by(Event.id))
        return [repository for (repository,) in rows]
