"""OrgService: creation, profile, deletion, membership and roles, the last-owner rule."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_ADMIN, REPO_WRITE
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid, NotFound
from dockyard.events.outbox import REPOSITORY_DELETED
from dockyard.models import Account, Repository, TeamMember
from tests.support.accounts import Services, audit, events, make_org, make_repo, make_user, with_token


async def test_a_user_creates_an_org_and_owns_it(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    org = await svc.orgs.create_org("acme", actor=alice, source_ip="10.1.1.1")
    assert (org.name, org.default_private, org.disabled) == ("acme", None, False)
    members = await svc.orgs.list_members("acme", PageRequest(), actor=alice)
    assert [(m.username, m.role) for m in members.items] == [("alice", "owner")]
    assert (await audit(db, "acme"))[-1] | {"data": None} == {
        "namespace": "acme",
        "action": "org.create",
        "actor": "alice",
        "target": "acme",
        "source_ip": "10.1.1.1",
        "data": None,
    }


async def test_create_org_rules(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    await make_user(db, "bobby")
    with pytest.raises(Denied):
        await svc.orgs.create_org("acme", owner="bobby", actor=alice)  # only orgs you own
    with pytest.raises(Denied):
        await svc.orgs.create_org("acme", actor=with_token(alice, REPO_ADMIN))
    with pytest.raises(Denied):
        await svc.orgs.create_org("acme", owner="bobby", actor=ANONYMOUS)
    with pytest.raises(Invalid):
        await svc.orgs.create_org("acme", actor=OPEN)  # the operator must name an owner
    with pytest.raises(NotFound):
        await svc.orgs.create_org("acme", owner="nobody", actor=OPEN)
    with pytest.raises(Conflict):
        await svc.orgs.create_org("alice", owner="bobby", actor=OPEN)  # shares the users' namespace
    with pytest.raises(Invalid):
        await svc.orgs.create_org("Acme", owner="bobby", actor=OPEN)
    assert (await svc.orgs.create_org("acme", owner="bobby", actor=OPEN)).name == "acme"
    with pytest.raises(Conflict):
        await svc.orgs.create_org("acme", owner="bobby", actor=OPEN)


async def test_update_org_is_for_owners(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    stranger = await make_user(db, "stranger")
    await make_org(db, "acme", owners=[owner], members=[member])
    info = await svc.orgs.update_org("acme", full_name="Acme Corp", default_private=False, actor=owner)
    assert (info.full_name, info.default_private) == ("Acme Corp", False)
    for actor in (member, stranger, ANONYMOUS, with_token(owner, REPO_WRITE)):
        with pytest.raises(Denied):
            await svc.orgs.update_org("acme", company="x", actor=actor)
    assert (await svc.orgs.update_org("acme", company="Acme", actor=with_token(owner, REPO_ADMIN))).company == "Acme"
    assert (await svc.orgs.update_org("acme", location="Mars", actor=OPEN)).location == "Mars"
    with pytest.raises(NotFound):
        await svc.orgs.update_org("nope", company="x", actor=OPEN)
    with pytest.raises(NotFound):
        await svc.orgs.update_org("owner", company="x", actor=OPEN)  # a user is not an organization
    assert [e["action"] for e in await audit(db, "acme")] == ["org.update"] * 3


async def test_members_list_is_for_members(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    stranger = await make_user(db, "stranger")
    await make_org(db, "acme", owners=[owner], members=[member])
    for actor in (owner, member, OPEN):
        page = await svc.orgs.list_members("acme", PageRequest(), actor=actor)
        assert [(m.username, m.role) for m in page.items] == [("member", "member"), ("owner", "owner")]
    for actor in (stranger, ANONYMOUS):
        with pytest.raises(Denied):
            await svc.orgs.list_members("acme", PageRequest(), actor=actor)


async def test_membership_management(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    await make_user(db, "newbie")
    await make_org(db, "acme", owners=[owner], members=[member])
    with pytest.raises(Denied):
        await svc.orgs.add_member("acme", "newbie", actor=member)
    added = await svc.orgs.add_member("acme", "newbie", actor=owner)
    assert (added.username, added.role) == ("newbie", "member")
    with pytest.raises(Conflict):
        await svc.orgs.add_member("acme", "newbie", actor=owner)
    with pytest.raises(Invalid):
        await svc.orgs.add_member("acme", "member", role="boss", actor=owner)
    with pytest.raises(NotFound):
        await svc.orgs.add_member("acme", "ghost", actor=owner)
    assert (await svc.orgs.set_member_role("acme", "newbie", "owner", actor=owner)).role == "owner"
    with pytest.raises(Denied):
        await svc.orgs.set_member_role("acme", "member", "owner", actor=member)
    await svc.orgs.remove_member("acme", "member", actor=member)  # members may leave
    with pytest.raises(NotFound):
        await svc.orgs.remove_member("acme", "member", actor=owner)
    assert [e["action"] for e in await audit(db, "acme")] == ["org.member.add", "org.member.role", "org.member.remove"]


async def test_last_owner_stays(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    other = await make_user(db, "other")
    await make_org(db, "acme", owners=[owner], members=[other])
    with pytest.raises(Conflict):
        await svc.orgs.remove_member("acme", "owner", actor=owner)
    with pytest.raises(Conflict):
        await svc.orgs.set_member_role("acme", "owner", "member", actor=OPEN)
    await svc.orgs.set_member_role("acme", "other", "owner", actor=owner)
    await svc.orgs.set_member_role("acme", "owner", "member", actor=owner)  # another owner now exists
    with pytest.raises(Conflict):
        await svc.orgs.remove_member("acme", "other", actor=OPEN)


async def test_removing_a_member_takes_them_out_of_the_teams(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    dev = await make_user(db, "devel")
    await make_org(db, "acme", owners=[owner])
    await svc.teams.create_team("acme", "devs", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "devel", actor=owner)
    await svc.orgs.remove_member("acme", "devel", actor=owner)
    async with db.read() as conn:
        seats = (await conn.execute(select(TeamMember).where(TeamMember.user_id == dev.account_id))).all()
    assert seats == []


async def test_delete_org(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    await make_org(db, "acme", owners=[owner], members=[member])
    await svc.robots.create_robot("acme", "ci", actor=owner)
    await make_repo(db, "acme/app")
    await make_repo(db, "acmeco/app")  # another namespace with the same prefix
    for actor in (member, with_token(owner, REPO_ADMIN)):
        with pytest.raises(Denied):
            await svc.orgs.delete_org("acme", actor=actor)
    assert await svc.orgs.delete_org("acme", actor=owner) == ["acme/app"]
    async with db.read() as conn:
        assert (await conn.execute(select(Repository.name))).scalars().all() == ["acmeco/app"]
        assert (await conn.execute(select(Account.name).order_by(Account.name))).scalars().all() == ["member", "owner"]
    assert await events(db, REPOSITORY_DELETED) == ["acme/app"]
    assert (await audit(db, "acme"))[-1]["action"] == "org.delete"


async def test_list_user_orgs(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    await make_org(db, "zeta", owners=[alice])
    await make_org(db, "acme", owners=[bob], members=[alice])
    page = await svc.orgs.list_user_orgs("alice", PageRequest(), actor=alice)
    assert [(o.org.name, o.role) for o in page.items] == [("acme", "member"), ("zeta", "owner")]
    assert (await svc.orgs.list_user_orgs("alice", PageRequest(), actor=OPEN)).count == 2
    with pytest.raises(Denied):
        await svc.orgs.list_user_orgs("alice", PageRequest(), actor=bob)
