"""AccessTokenService (personal access tokens) and repository visibility."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from dockyard.accounts.visibility import set_visibility
from dockyard.auth.credentials import Authenticator
from dockyard.authz.permissions import Level, repository_level
from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_ADMIN, REPO_READ, REPO_WRITE, Principal
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Denied, Invalid, NotFound, Unauthorized
from dockyard.models import AccessToken, Repository
from dockyard.settings import Settings
from tests.support.accounts import Services, audit, make_org, make_repo, make_user, with_token


async def test_create_token_and_sign_in_with_it(db: Database, settings: Settings, svc: Services) -> None:
    alice = await make_user(db, "alice")
    expires = datetime.now(UTC) + timedelta(days=30)
    info, secret = await svc.tokens.create(
        alice,
        label="ci",
        scopes=[REPO_WRITE, REPO_READ, REPO_WRITE],
        expires_at=expires,
        repositories=["alice/app"],
        source_ip="10.0.0.9",
    )
    assert secret.startswith("dy_pat_")
    assert info.token_prefix == secret[:12]
    assert (info.username, info.token_label, info.scopes, info.repositories) == (
        "alice",
        "ci",
        (REPO_WRITE, REPO_READ),
        ("alice/app",),
    )
    assert (info.client_id, info.generated_by, info.creator_ip, info.is_active) == (
        "dockyard",
        "manual",
        "10.0.0.9",
        True,
    )
    assert info.expires_at == expires
    assert info.last_used is None
    async with db.read() as conn:
        row = (await conn.execute(select(AccessToken).where(AccessToken.id == info.uuid))).one()
    assert secret not in " ".join(str(v) for v in row)  # stored as its SHA-256 only
    principal = await Authenticator(db, settings).login("alice", secret)
    assert (principal.token_id, principal.token_scopes) == (info.uuid, frozenset({REPO_WRITE, REPO_READ}))
    assert (await svc.tokens.get(alice, info.uuid)).last_used is not None
    entry = (await audit(db, "alice"))[-1]
    assert (entry["action"], entry["target"], entry["data"]["scopes"]) == (
        "access_token.create",
        info.uuid,
        ["repo:write", "repo:read"],
    )


async def test_who_may_create_tokens(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    admin = await make_user(db, "root", admin=True)
    robot = Principal("robot", 99, "acme+ci")
    for actor in (with_token(alice, REPO_ADMIN), robot, ANONYMOUS):
        with pytest.raises(Denied):
            await svc.tokens.create(actor, label="x", scopes=[REPO_READ])
    with pytest.raises(Denied):
        await svc.tokens.create(alice, label="x", scopes=[REPO_READ], username="root")
    with pytest.raises(Invalid):
        await svc.tokens.create(OPEN, label="x", scopes=[REPO_READ])  # the operator names the user
    made, _ = await svc.tokens.create(OPEN, label="x", scopes=[REPO_READ], username="alice")
    assert made.username == "alice"
    made, _ = await svc.tokens.create(admin, label="x", scopes=[REPO_READ], username="alice")
    assert made.username == "alice"
    with pytest.raises(NotFound):
        await svc.tokens.create(OPEN, label="x", scopes=[REPO_READ], username="ghost")


@pytest.mark.parametrize(
    ("kwargs", "subject"),
    [
        ({"label": ""}, "token"),
        ({"label": "x" * 101}, "token"),
        ({"scopes": []}, "scope"),
        ({"scopes": ["repo:everything"]}, "scope"),
        ({"expires_at": datetime.now(UTC) - timedelta(seconds=1)}, "token"),
        ({"expires_at": datetime(2999, 1, 1)}, "token"),  # naive
        ({"repositories": []}, "token"),
        ({"repositories": ["Not/Valid"]}, "name"),
    ],
)
async def test_token_validation(db: Database, svc: Services, kwargs: dict[str, object], subject: str) -> None:
    alice = await make_user(db, "alice")
    arguments: dict[str, object] = {"label": "ok", "scopes": [REPO_READ], **kwargs}
    with pytest.raises(Invalid) as err:
        await svc.tokens.create(alice, **arguments)  # type: ignore[arg-type]
    assert err.value.subject == subject


async def test_list_get_revoke_reactivate_delete(db: Database, settings: Settings, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    auth = Authenticator(db, settings)
    first, secret = await svc.tokens.create(alice, label="one", scopes=[REPO_READ])
    second, _ = await svc.tokens.create(alice, label="two", scopes=[REPO_ADMIN])
    await svc.tokens.create(bob, label="bob's", scopes=[REPO_READ])
    listed = await svc.tokens.list(alice, PageRequest())
    assert {t.token_label for t in listed.items} == {"one", "two"}
    assert listed.count == 2
    assert (await svc.tokens.list(OPEN, PageRequest(), username="bobby")).count == 1
    with pytest.raises(Denied):
        await svc.tokens.list(bob, PageRequest(), username="alice")
    with pytest.raises(Denied):
        await svc.tokens.list(with_token(alice, REPO_ADMIN), PageRequest())
    with pytest.raises(NotFound):
        await svc.tokens.get(bob, first.uuid)  # another user's token is not even seen
    with pytest.raises(NotFound):
        await svc.tokens.update(bob, first.uuid, is_active=False)
    revoked = await svc.tokens.update(alice, first.uuid, label="renamed", is_active=False)
    assert (revoked.token_label, revoked.is_active) == ("renamed", False)
    with pytest.raises(Unauthorized):
        await auth.login("alice", secret)
    assert (await svc.tokens.update(alice, first.uuid, is_active=True)).is_active
    assert (await auth.login("alice", secret)).token_id == first.uuid
    await svc.tokens.delete(alice, first.uuid)
    with pytest.raises(Unauthorized):
        await auth.login("alice", secret)
    with pytest.raises(NotFound):
        await svc.tokens.get(alice, first.uuid)
    await svc.tokens.delete(OPEN, second.uuid)
    actions = [e["action"] for e in await audit(db, "alice")]
    assert actions == [
        "access_token.create",
        "access_token.create",
        "access_token.revoke",
        "access_token.update",
        "access_token.delete",
        "access_token.delete",
    ]


async def test_set_visibility(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    owner = await make_user(db, "owner")
    await make_org(db, "acme", owners=[owner], members=[alice])
    await make_repo(db, "acme/app")
    await svc.teams.create_team("acme", "devs", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "alice", actor=owner)
    await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.WRITE, actor=owner)
    with pytest.raises(NotFound):
        await set_visibility(db, "acme/app", False, actor=bob)  # private: not even seen
    with pytest.raises(Denied):
        await set_visibility(db, "acme/app", False, actor=alice)  # write is not admin
    with pytest.raises(NotFound):
        await set_visibility(db, "acme/missing", False, actor=owner)
    assert await set_visibility(db, "acme/app", False, actor=owner, source_ip="10.2.2.2")
    assert not await set_visibility(db, "acme/app", False, actor=owner)  # unchanged
    async with db.read() as conn:
        assert not (await conn.execute(select(Repository.is_private).where(Repository.name == "acme/app"))).scalar_one()
        assert await repository_level(conn, ANONYMOUS, "acme/app") == Level.READ
    with pytest.raises(Denied):
        await set_visibility(db, "acme/app", True, actor=bob)  # public now: seen, but not administered
    assert await set_visibility(db, "acme/app", True, actor=OPEN)
    changes = [(e["actor"], e["data"]) for e in await audit(db, "acme") if e["action"] == "repo.change_privacy"]
    assert changes == [("owner", {"is_private": False}), ("open", {"is_private": True})]
