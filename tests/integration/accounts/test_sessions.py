"""Sessions on the test backend's database: refresh tokens stored, redeemed and revoked by ``RefreshTokens``; the
credential generation moved on by a password change, a robot secret regeneration and ``revoke_sessions``; who may
revoke sessions; rotation under concurrent redemption."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dockyard.auth.credentials import Authenticator
from dockyard.auth.refresh import RefreshTokens
from dockyard.auth.secrets import SecretBox
from dockyard.auth.token_keys import KeyRing
from dockyard.auth.tokens import API_AUDIENCE, TokenService
from dockyard.authz.principal import OPEN, REPO_ADMIN
from dockyard.db.engine import Database
from dockyard.errors import Denied, NotFound, Unauthorized
from dockyard.models import Account, RefreshToken
from dockyard.settings import Settings
from tests.support.accounts import PASSWORD, Services, audit, make_user, with_token

SECRET = "integration-test-server-secret-0123456789"
SERVICE = "registry.test"


async def sessions(db: Database, *, rotation: bool = False) -> tuple[RefreshTokens, TokenService, Authenticator]:
    settings = Settings(secret_key=SECRET, refresh_token_rotation=rotation)
    ring = KeyRing(db, SecretBox(SECRET), timedelta(days=30))
    await ring.ensure()
    tokens = TokenService(ring, settings)
    authenticator = Authenticator(db, settings)
    return RefreshTokens(db, tokens, authenticator, settings), tokens, authenticator


async def generation(db: Database, name: str) -> int:
    async with db.read() as conn:
        value: int = (
            await conn.execute(select(Account.credential_generation).where(Account.name == name))
        ).scalar_one()
    return value


async def live_refresh_rows(db: Database) -> int:
    async with db.read() as conn:
        count: int = (
            await conn.execute(select(func.count()).select_from(RefreshToken).where(RefreshToken.revoked_at.is_(None)))
        ).scalar_one()
    return count


async def test_password_change_ends_refresh_and_api_tokens(db: Database, settings: Settings, svc: Services) -> None:
    await make_user(db, "alice")
    refresh, tokens, auth = await sessions(db)
    alice = await auth.login("alice", PASSWORD)
    assert alice.credential_generation == 0
    stored = await refresh.issue(alice, SERVICE, "docker")
    api = await tokens.issue_api(alice)
    assert (await refresh.redeem(stored, SERVICE))[1] == stored
    assert await live_refresh_rows(db) == 1
    await svc.users.change_password("alice", "new-password-1", current=PASSWORD, actor=alice)
    assert await generation(db, "alice") == 1
    assert await live_refresh_rows(db) == 0
    with pytest.raises(Unauthorized):
        await refresh.redeem(stored, SERVICE)
    assert await auth.principal_for_token(await tokens.verify(api.token, audience=API_AUDIENCE, use="api")) is None
    fresh = await auth.login("alice", "new-password-1")
    assert fresh.credential_generation == 1
    verified = await tokens.verify((await tokens.issue_api(fresh)).token, audience=API_AUDIENCE, use="api")
    assert verified.generation == 1
    assert await auth.principal_for_token(verified) is not None


async def test_revoke_sessions_permissions_and_audit(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bob")
    admin = await make_user(db, "root", admin=True)
    with pytest.raises(Denied):
        await svc.users.revoke_sessions("alice", actor=bob)
    with pytest.raises(Denied):
        await svc.users.revoke_sessions("alice", actor=with_token(alice, REPO_ADMIN))
    with pytest.raises(NotFound):
        await svc.users.revoke_sessions("nobody", actor=admin)
    await svc.users.revoke_sessions("alice", actor=alice, source_ip="10.0.0.9")
    await svc.users.revoke_sessions("alice", actor=admin)
    await svc.users.revoke_sessions("alice", actor=OPEN)
    assert await generation(db, "alice") == 3
    assert await generation(db, "bob") == 0
    entries = [e for e in await audit(db, "alice") if e["action"] == "user.revoke_sessions"]
    assert [(e["actor"], e["target"]) for e in entries] == [("alice", "alice"), ("root", "alice"), ("open", "alice")]


async def test_robot_secret_regeneration_moves_the_generation_on(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    await svc.orgs.create_org("acme", owner="owner", actor=owner)
    info, secret = await svc.robots.create_robot("acme", "ci", actor=owner)
    refresh, _, auth = await sessions(db)
    robot = await auth.login(info.name, secret)
    stored = await refresh.issue(robot, SERVICE, "docker")
    await svc.robots.regenerate_secret("acme", "ci", actor=owner)
    assert await generation(db, info.name) == 1
    with pytest.raises(Unauthorized):
        await refresh.redeem(stored, SERVICE)


async def test_unknown_refresh_token_is_refused(db: Database) -> None:
    """A correctly signed refresh token without a row (issued before rows existed) is refused."""
    await make_user(db, "alice")
    refresh, tokens, auth = await sessions(db)
    alice = await auth.login("alice", PASSWORD)
    unstored = await tokens.issue_refresh(alice, SERVICE, "docker")
    with pytest.raises(Unauthorized):
        await refresh.redeem(unstored.token, SERVICE)


async def test_concurrent_redemption_with_rotation_revokes_the_family(db: Database) -> None:
    await make_user(db, "alice")
    refresh, _, auth = await sessions(db, rotation=True)
    alice = await auth.login("alice", PASSWORD)
    stored = await refresh.issue(alice, SERVICE, "docker")
    results = await asyncio.gather(*(refresh.redeem(stored, SERVICE) for _ in range(4)), return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) <= 1
    assert all(isinstance(r, Unauthorized) for r in results if isinstance(r, BaseException))
    # Reuse was detected, so the whole family is gone, the winner's successor included.
    assert await live_refresh_rows(db) == 0
    for _, successor in winners:
        with pytest.raises(Unauthorized):
            await refresh.redeem(successor, SERVICE)
