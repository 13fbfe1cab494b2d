"""Migration 0009 on a database of the old schema (migrated to 0007, rows written as the old code wrote them):
each namespace that repositories, webhooks or trust settings name but no account owns becomes an organization of
the first site administrator, audited; audit entries of accounts deleted long ago are archived; without an
administrator nothing is created and the names stay unclaimable."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text

from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.errors import Conflict
from dockyard.migrations.runner import upgrade
from dockyard.models import AuditEntry, Webhook
from dockyard.models.base import utcnow
from dockyard.settings import Settings
from tests.support.accounts import database_url, services


async def _old_database(tmp_path: Path) -> Database:
    db = Database(database_url(tmp_path))
    await upgrade(db, "0007")
    return db


async def _sql(db: Database, statement: str, **params: Any) -> list[Any]:
    async with db.write() as conn:
        result = await conn.execute(text(statement), params)
        return list(result.all()) if result.returns_rows else []


async def _old_user(db: Database, name: str, *, admin: bool = False) -> Principal:
    """A user as the 0007 schema holds one (today's model adds columns a 0007 table does not have)."""
    async with db.write() as conn:
        await conn.execute(
            text(
                "INSERT INTO accounts (name, kind, email, password_hash, is_admin, disabled, full_name, company, "
                "location, profile_url, description, created_at) VALUES (:name, 'user', :email, 'x', :admin, "
                ":disabled, '', '', '', '', '', :now)"
            ),
            {"name": name, "email": f"{name}@example.com", "admin": admin, "disabled": False, "now": utcnow()},
        )
        account_id = (
            await conn.execute(text("SELECT id FROM accounts WHERE name = :name"), {"name": name})
        ).scalar_one()
    return Principal("user", int(account_id), name, admin)


async def _old_rows(db: Database) -> None:
    # A repository in a namespace nobody owns (an administrator's push), a webhook left by a deleted account,
    # and that account's audit log. (Only columns that existed at 0007 are written.)
    now = utcnow()
    async with db.write() as conn:
        await conn.execute(  # text, not the model: today's model adds columns (with defaults) 0007 lacks
            text(
                "INSERT INTO repositories (name, namespace, is_private, description, full_description, star_count, "
                "pull_count, created_at) VALUES ('projx/app', 'projx', :private, '', '', 0, 0, :now)"
            ),
            {"private": True, "now": now},
        )
        await conn.execute(
            insert(Webhook).values(
                uuid=str(uuid.uuid4()),
                namespace="gonehooks",
                name="ci",
                url="http://x.test/",
                events="[]",
                payload_format="dockerhub",
                secret="s",
                created_at=now,
                updated_at=now,
            )
        )
        await conn.execute(
            insert(AuditEntry).values(
                namespace="deleted1", action="repo.tag.push", actor="deleted1", target="deleted1/app:v1", created_at=now
            )
        )


async def test_namespaces_without_an_account_become_the_first_administrators_organizations(
    tmp_path: Path,
) -> None:
    db = await _old_database(tmp_path)
    try:
        await _old_user(db, "someone")
        await _old_user(db, "firstadmin", admin=True)
        await _old_user(db, "secondadmin", admin=True)
        await _old_rows(db)
        await upgrade(db)

        for namespace in ("projx", "gonehooks"):
            owners = await _sql(
                db,
                "SELECT u.name, m.role FROM accounts o JOIN org_members m ON m.org_id = o.id "
                "JOIN accounts u ON u.id = m.user_id WHERE o.name = :ns AND o.kind = 'org'",
                ns=namespace,
            )
            assert [tuple(row) for row in owners] == [("firstadmin", "owner")]
            entries = await _sql(
                db,
                "SELECT action, actor, target, data FROM audit_log WHERE namespace = :ns AND archived_at IS NULL",
                ns=namespace,
            )
            assert len(entries) == 1
            action, actor, target, data = entries[0]
            assert (action, actor, target) == ("org.create", "dockyard", namespace)
            assert json.loads(data) == {"owner": "firstadmin", "reason": "migration: namespace without account"}
        archived = await _sql(db, "SELECT archived_at FROM audit_log WHERE namespace = 'deleted1'")
        assert [row[0] is not None for row in archived] == [True]
        assert not await _sql(db, "SELECT id FROM accounts WHERE name = 'deleted1'")
    finally:
        await db.close()


async def test_without_an_administrator_nothing_is_created_and_the_names_stay_taken(tmp_path: Path) -> None:
    db = await _old_database(tmp_path)
    try:
        user = await _old_user(db, "someone")
        await _old_rows(db)
        await upgrade(db)
        assert not await _sql(db, "SELECT id FROM accounts WHERE kind = 'org'")
        orgs = services(db, Settings(data_dir=tmp_path)).orgs
        for namespace in ("projx", "gonehooks"):
            with pytest.raises(Conflict):
                await orgs.create_org(namespace, actor=user)
        # The audit log of the deleted account is archived: its name is free.
        assert (await orgs.create_org("deleted1", actor=user)).name == "deleted1"
    finally:
        await db.close()
