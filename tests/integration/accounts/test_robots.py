"""RobotService: owners manage robots, grants stay inside the organization's namespace, secrets are shown once and
stored hashed, and disabling, regenerating or deleting takes effect at the next sign-in."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dockyard.auth.credentials import Authenticator
from dockyard.authz.permissions import Level, repository_level
from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_WRITE
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid, NotFound, Unauthorized
from dockyard.models import Account, Repository
from dockyard.settings import Settings
from tests.support.accounts import Services, audit, make_org, make_repo, make_user, with_token


async def test_create_robot_and_sign_in_with_its_secret(db: Database, settings: Settings, svc: Services) -> None:
    owner = await make_user(db, "owner")
    await make_org(db, "acme", owners=[owner])
    await make_repo(db, "acme/app")
    robot, secret = await svc.robots.create_robot(
        "acme",
        "ci",
        description="pipelines",
        permissions={"acme/app": Level.READ, "acme/cache": Level.WRITE},
        actor=owner,
    )
    assert (robot.name, robot.org, robot.shortname, robot.description) == ("acme+ci", "acme", "ci", "pipelines")
    assert robot.permission_map == {"acme/app": Level.READ, "acme/cache": Level.WRITE}
    assert secret.startswith("dy_rbt_")
    async with db.read() as conn:
        stored = str((await conn.execute(select(Account.password_hash).where(Account.name == "acme+ci"))).scalar_one())
        created = (await conn.execute(select(Repository.name).where(Repository.name == "acme/cache"))).scalar_one()
    assert secret not in stored
    assert stored.startswith("sha256$")
    assert created == "acme/cache"  # a missing repository of the organization is created
    principal = await Authenticator(db, settings).login("acme+ci", secret)
    assert (principal.kind, principal.name) == ("robot", "acme+ci")
    async with db.read() as conn:
        assert await repository_level(conn, principal, "acme/app") == Level.READ
        assert await repository_level(conn, principal, "acme/cache") == Level.WRITE
        assert await repository_level(conn, principal, "acme/other") == Level.NONE
    entry = (await audit(db, "acme"))[-1]
    assert (entry["action"], entry["target"]) == ("robot.create", "acme+ci")
    assert entry["data"] == {"permissions": {"acme/app": "read", "acme/cache": "write"}, "expires_at": None}


async def test_robot_rules(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    await make_org(db, "acme", owners=[owner], members=[member])
    await make_org(db, "rival", owners=[member])
    for actor in (member, ANONYMOUS, with_token(owner, REPO_WRITE)):
        with pytest.raises(Denied):
            await svc.robots.create_robot("acme", "ci", actor=actor)
    with pytest.raises(Invalid):
        await svc.robots.create_robot("acme", "ci", permissions={"rival/app": Level.READ}, actor=owner)
    with pytest.raises(Invalid):
        await svc.robots.create_robot("acme", "ci", permissions={"acme/app": Level.NONE}, actor=owner)
    with pytest.raises(Invalid):
        await svc.robots.create_robot("acme", "CI", actor=owner)
    with pytest.raises(NotFound):
        await svc.robots.create_robot("owner", "ci", actor=OPEN)  # users have no robots
    await svc.robots.create_robot("acme", "ci", actor=owner)
    with pytest.raises(Conflict):
        await svc.robots.create_robot("acme", "ci", actor=OPEN)
    with pytest.raises(Denied):
        await svc.robots.list_robots("acme", PageRequest(), actor=member)
    with pytest.raises(NotFound):
        await svc.robots.get_robot("acme", "nope", actor=owner)
    with pytest.raises(Invalid):
        await svc.robots.get_robot("acme", "rival+ci", actor=owner)


async def test_update_regenerate_delete(db: Database, settings: Settings, svc: Services) -> None:
    owner = await make_user(db, "owner")
    await make_org(db, "acme", owners=[owner])
    auth = Authenticator(db, settings)
    _, first = await svc.robots.create_robot("acme", "ci", permissions={"acme/app": Level.READ}, actor=owner)
    await svc.robots.create_robot("acme", "deploy", actor=owner)
    listed = await svc.robots.list_robots("acme", PageRequest(), actor=owner)
    assert [(r.name, r.permission_map) for r in listed.items] == [
        ("acme+ci", {"acme/app": Level.READ}),
        ("acme+deploy", {}),
    ]
    updated = await svc.robots.update_robot(
        "acme", "acme+ci", description="new", permissions={"acme/web": Level.ADMIN}, actor=owner
    )
    assert (updated.description, updated.permission_map) == ("new", {"acme/web": Level.ADMIN})
    assert (await svc.robots.update_robot("acme", "ci", disabled=True, actor=owner)).disabled
    with pytest.raises(Unauthorized):
        await auth.login("acme+ci", first)
    await svc.robots.update_robot("acme", "ci", disabled=False, actor=owner)
    second = await svc.robots.regenerate_secret("acme", "ci", actor=owner)
    assert second != first
    with pytest.raises(Unauthorized):
        await auth.login("acme+ci", first)
    assert (await auth.login("acme+ci", second)).name == "acme+ci"
    await svc.robots.delete_robot("acme", "ci", actor=owner)
    with pytest.raises(Unauthorized):
        await auth.login("acme+ci", second)
    with pytest.raises(NotFound):
        await svc.robots.get_robot("acme", "ci", actor=owner)
    actions = [e["action"] for e in await audit(db, "acme")]
    assert actions == [
        "repo.create",  # the first grant names a repository not pushed yet: the grant creates it
        "robot.create",
        "robot.create",
        "repo.create",
        "robot.update",
        "robot.update",
        "robot.update",
        "robot.secret.regenerate",
        "robot.delete",
    ]
