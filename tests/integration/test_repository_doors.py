"""Every door to a repository's life goes through the one repository service (``registry/repositories.py``):
created by a push, by the Hub API or by a grant (the CLI's ``team grant`` / ``robot create --repo``), its
visibility changed by the Hub API or by the CLI's ``repo set-visibility``, deleted by the Hub API or with its
account — each door leaves the same row, the same event and the same audit entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dockyard.accounts.orgs import OrgService
from dockyard.accounts.robots import RobotService
from dockyard.accounts.teams import TeamService
from dockyard.accounts.users import UserService
from dockyard.accounts.visibility import set_visibility
from dockyard.authz.permissions import Level
from dockyard.core.digest import Digest
from dockyard.models import AuditEntry, Event, Repository, Upload
from dockyard.models.base import utcnow
from dockyard.registry.uploads import ChunkSpec
from tests.support.checks import unique
from tests.support.hub_services import HubEnv, hub_env, sha256

LONG_AGO = datetime(2020, 1, 1, tzinfo=utcnow().tzinfo)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[HubEnv]:
    async with hub_env(tmp_path) as e:
        yield e


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def row(env: HubEnv, name: str) -> Any:
    async with env.db.read() as conn:
        return (await conn.execute(select(Repository).where(Repository.name == name))).one()


async def audit_of(env: HubEnv, target: str, action: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(actor, source address, data) of each ``action`` entry on ``target``, archived ones included."""
    async with env.db.read() as conn:
        rows = await conn.execute(
            select(AuditEntry.actor, AuditEntry.source_ip, AuditEntry.data)
            .where(AuditEntry.target == target, AuditEntry.action == action)
            .order_by(AuditEntry.id)
        )
        return [(r.actor, r.source_ip, json.loads(r.data)) for r in rows]


async def events_of(env: HubEnv, name: str) -> list[tuple[str, str | None]]:
    async with env.db.read() as conn:
        rows = await conn.execute(select(Event.type, Event.actor).where(Event.repository == name).order_by(Event.id))
        return [(r.type, r.actor) for r in rows]


async def test_push_api_and_grant_create_the_same_repository(env: HubEnv) -> None:
    owner = await env.user()
    org = await env.org(owner=owner)
    data = b"first layer"
    # A push: the first blob names the repository.
    await env.registry.uploads.monolithic(
        f"{org}/pushed",
        Digest.parse(sha256(data)),
        _one(data),
        ChunkSpec(length=len(data)),
        owner.name,
        source_ip="192.0.2.7",
    )
    # The Hub API.
    await env.repos.create(owner, org, "api", source_ip="192.0.2.7")
    # A grant naming a repository nobody pushed yet (``dockyard team grant``, the Hub's team permissions).
    teams = TeamService(env.db, env.ctx.settings)
    await teams.create_team(org, "devs", actor=owner)
    await teams.set_team_permission(org, "devs", f"{org}/granted", Level.READ, actor=owner, source_ip="192.0.2.7")
    robots = RobotService(env.db, env.ctx.settings)  # ``dockyard robot create --repo``
    await robots.create_robot(org, "ci", permissions={f"{org}/robot": Level.READ}, actor=owner, source_ip="192.0.2.7")

    for door in ("pushed", "api", "granted", "robot"):
        name = f"{org}/{door}"
        repo = await row(env, name)
        assert (repo.namespace, repo.is_private, repo.description, repo.full_description) == (org, True, "", ""), door
        assert (repo.star_count, repo.pull_count, repo.last_pushed_at, repo.last_pulled_at) == (0, 0, None, None)
        assert repo.updated_at == repo.created_at, door
        assert await audit_of(env, name, "repo.create") == [(owner.name, "192.0.2.7", {"is_private": True})], door
        assert (await events_of(env, name))[0] == ("repository.created", owner.name), door


async def test_every_door_takes_the_namespace_default_visibility(env: HubEnv) -> None:
    owner = await env.user()
    org = await env.org(owner=owner)
    await env.set_account(org, default_private=False)
    await env.blob(f"{org}/pushed", b"public by default")
    await env.repos.create(owner, org, "api")
    teams = TeamService(env.db, env.ctx.settings)
    await teams.create_team(org, "devs", actor=owner)
    await teams.set_team_permission(org, "devs", f"{org}/granted", Level.READ, actor=owner)
    for door in ("pushed", "api", "granted"):
        assert not (await row(env, f"{org}/{door}")).is_private, door
        assert [data for _, _, data in await audit_of(env, f"{org}/{door}", "repo.create")] == [{"is_private": False}]


async def test_api_and_cli_change_visibility_alike(env: HubEnv) -> None:
    owner = await env.user()
    name = f"{owner.name}/app"
    await env.repos.create(owner, owner.name, "app", is_private=True)

    await env.set_columns(name, updated_at=LONG_AGO)
    await env.repos.update(owner, owner.name, "app", is_private=False, source_ip="192.0.2.1")
    after_api = (await row(env, name)).updated_at
    assert after_api > LONG_AGO

    await env.set_columns(name, updated_at=LONG_AGO)
    assert await set_visibility(env.db, name, True, actor=owner, source_ip="192.0.2.2") is True
    after_cli = await row(env, name)
    assert after_cli.is_private
    assert after_cli.updated_at > LONG_AGO

    assert await audit_of(env, name, "repo.change_privacy") == [
        (owner.name, "192.0.2.1", {"is_private": False}),
        (owner.name, "192.0.2.2", {"is_private": True}),
    ]
    # No change, no entry and no new ``updated_at``, whichever door.
    await env.set_columns(name, updated_at=LONG_AGO)
    assert await set_visibility(env.db, name, True, actor=owner) is False
    await env.repos.update(owner, owner.name, "app", is_private=True)
    assert (await row(env, name)).updated_at == LONG_AGO
    assert len(await audit_of(env, name, "repo.change_privacy")) == 2


async def test_description_change_moves_updated_at(env: HubEnv) -> None:
    owner = await env.user()
    name = f"{owner.name}/app"
    await env.push_image(name)
    await env.set_columns(name, updated_at=LONG_AGO)
    before = utcnow() - timedelta(seconds=1)
    await env.repos.update(owner, owner.name, "app", full_description="# README")
    assert (await row(env, name)).updated_at >= before
    assert [data for _, _, data in await audit_of(env, name, "repo.update")] == [{"fields": ["full_description"]}]


async def test_api_and_account_deletion_delete_alike(env: HubEnv) -> None:
    users = UserService(env.db, env.ctx.settings, env.ctx.store)
    orgs = OrgService(env.db, env.ctx.settings, env.ctx.store)
    admin = await env.user(admin=True)
    owner = await env.user()
    leaving = await env.user(unique("leaving"))
    org = await env.org(owner=owner)
    doomed = [f"{owner.name}/by-api", f"{org}/with-org", f"{leaving.name}/with-user"]
    sessions = {}
    for name in doomed:
        await env.push_image(name)
        sessions[name] = (await env.registry.uploads.start(name)).id
    assert set(sessions.values()) <= set(await env.ctx.store.list_uploads())

    await env.repos.delete(owner, owner.name, "by-api", source_ip="192.0.2.9")
    await orgs.delete_org(org, actor=owner, source_ip="192.0.2.9")
    await users.delete_user(leaving.name, actor=admin, source_ip="192.0.2.9")

    left = set(await env.ctx.store.list_uploads())
    for name, actor in zip(doomed, [owner.name, owner.name, admin.name], strict=True):
        assert await audit_of(env, name, "repo.delete") == [(actor, "192.0.2.9", {})], name
        assert (await events_of(env, name))[-1] == ("repository.deleted", actor), name
        assert sessions[name] not in left, name
    async with env.db.read() as conn:
        assert (await conn.execute(select(Repository.name).where(Repository.name.in_(doomed)))).all() == []
        assert (await conn.execute(select(Upload.id).where(Upload.repository.in_(doomed)))).all() == []
