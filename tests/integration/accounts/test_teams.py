"""TeamService and CollaboratorService: who manages teams and grants, what members see, and that grants take
effect in the permission check."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dockyard.authz.permissions import Level, repository_level
from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_ADMIN, REPO_WRITE, Principal
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Denied, Invalid, NotFound
from dockyard.events.outbox import REPOSITORY_CREATED
from dockyard.models import Repository
from tests.support.accounts import Services, audit, events, make_org, make_repo, make_user, with_token


async def level(db: Database, principal: Principal, repository: str) -> Level:
    async with db.read() as conn:
        return await repository_level(conn, principal, repository)


async def test_owners_manage_teams_and_members_see_them(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    stranger = await make_user(db, "stranger")
    await make_org(db, "acme", owners=[owner], members=[member])
    team = await svc.teams.create_team("acme", "Dev-Team", "builders", actor=owner)
    assert (team.org, team.name, team.description, team.member_count) == ("acme", "Dev-Team", "builders", 0)
    for actor in (member, stranger, ANONYMOUS, with_token(owner, REPO_WRITE)):
        with pytest.raises(Denied):
            await svc.teams.create_team("acme", "other", actor=actor)
    with pytest.raises(Conflict):
        await svc.teams.create_team("acme", "Dev-Team", actor=owner)
    with pytest.raises(Invalid):
        await svc.teams.create_team("acme", "-bad", actor=owner)
    assert [t.name for t in (await svc.teams.list_teams("acme", PageRequest(), actor=member)).items] == ["Dev-Team"]
    for actor in (stranger, ANONYMOUS):
        with pytest.raises(Denied):
            await svc.teams.list_teams("acme", PageRequest(), actor=actor)
    renamed = await svc.teams.update_team("acme", "Dev-Team", name="devs", description="", actor=owner)
    assert (renamed.name, renamed.description) == ("devs", "")
    with pytest.raises(NotFound):
        await svc.teams.get_team("acme", "Dev-Team", actor=member)
    await svc.teams.create_team("acme", "ops", actor=owner)
    with pytest.raises(Conflict):
        await svc.teams.update_team("acme", "ops", name="devs", actor=owner)
    await svc.teams.delete_team("acme", "ops", actor=OPEN)
    assert [e["action"] for e in await audit(db, "acme")] == [
        "team.create",
        "team.update",
        "team.create",
        "team.delete",
    ]


async def test_team_members(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    member = await make_user(db, "member")
    await make_user(db, "outsider")
    await make_org(db, "acme", owners=[owner], members=[member])
    await svc.teams.create_team("acme", "devs", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "member", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "outsider", actor=owner)  # joins the organization too
    with pytest.raises(Conflict):
        await svc.teams.add_team_member("acme", "devs", "member", actor=owner)
    with pytest.raises(Denied):
        await svc.teams.add_team_member("acme", "devs", "owner", actor=member)
    with pytest.raises(NotFound):
        await svc.teams.add_team_member("acme", "devs", "ghost", actor=owner)
    roles = {m.username: m.role for m in (await svc.orgs.list_members("acme", PageRequest(), actor=owner)).items}
    assert roles == {"owner": "owner", "member": "member", "outsider": "member"}
    listed = await svc.teams.list_team_members("acme", "devs", PageRequest(), actor=member)
    assert [m.username for m in listed.items] == ["member", "outsider"]
    assert (await svc.teams.get_team("acme", "devs", actor=member)).member_count == 2
    await svc.teams.remove_team_member("acme", "devs", "outsider", actor=owner)
    with pytest.raises(NotFound):
        await svc.teams.remove_team_member("acme", "devs", "outsider", actor=owner)
    actions = [e["action"] for e in await audit(db, "acme")]
    assert actions == ["team.create", "team.member.add", "org.member.add", "team.member.add", "team.member.remove"]


async def test_team_permissions_take_effect(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    dev = await make_user(db, "devel")
    other = await make_user(db, "other")
    await make_org(db, "acme", owners=[owner], members=[dev, other])
    await make_org(db, "rival", owners=[other])
    await svc.teams.create_team("acme", "devs", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "devel", actor=owner)
    await make_repo(db, "acme/app")
    assert await level(db, dev, "acme/app") == Level.NONE
    grant = await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.WRITE, actor=owner)
    assert (grant.repository, grant.level) == ("acme/app", Level.WRITE)
    assert await level(db, dev, "acme/app") == Level.WRITE
    assert await level(db, other, "acme/app") == Level.NONE  # an org member outside the team
    await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.READ, actor=owner)  # changes the level
    assert await level(db, dev, "acme/app") == Level.READ
    # A repository that does not exist yet is created (private by default), with its event.
    await svc.teams.set_team_permission("acme", "devs", "acme/new", Level.ADMIN, actor=owner)
    async with db.read() as conn:
        assert (await conn.execute(select(Repository.is_private).where(Repository.name == "acme/new"))).scalar_one()
    assert await events(db, REPOSITORY_CREATED) == ["acme/new"]
    listed = await svc.teams.list_team_permissions("acme", "devs", actor=dev)
    assert [(g.repository, g.level) for g in listed] == [("acme/app", Level.READ), ("acme/new", Level.ADMIN)]
    with pytest.raises(Invalid):
        await svc.teams.set_team_permission("acme", "devs", "rival/app", Level.READ, actor=owner)
    with pytest.raises(Invalid):
        await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.NONE, actor=owner)
    with pytest.raises(Denied):
        await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.ADMIN, actor=dev)
    await svc.teams.remove_team_permission("acme", "devs", "acme/app", actor=owner)
    assert await level(db, dev, "acme/app") == Level.NONE
    with pytest.raises(NotFound):
        await svc.teams.remove_team_permission("acme", "devs", "acme/app", actor=owner)
    changes = [(e["target"], e["data"]) for e in await audit(db, "acme") if e["action"] == "repo.permission.change"]
    assert changes == [
        ("acme/app", {"team": "devs", "permission": "write"}),
        ("acme/app", {"team": "devs", "permission": "read"}),
        ("acme/new", {"team": "devs", "permission": "admin"}),
        ("acme/app", {"team": "devs", "permission": None}),
    ]


async def test_list_repository_teams_needs_admin(db: Database, svc: Services) -> None:
    owner = await make_user(db, "owner")
    dev = await make_user(db, "devel")
    stranger = await make_user(db, "stranger")
    await make_org(db, "acme", owners=[owner], members=[dev])
    await svc.teams.create_team("acme", "devs", actor=owner)
    await svc.teams.create_team("acme", "ops", actor=owner)
    await svc.teams.add_team_member("acme", "devs", "devel", actor=owner)
    await make_repo(db, "acme/app")
    await svc.teams.set_team_permission("acme", "ops", "acme/app", Level.ADMIN, actor=owner)
    await svc.teams.set_team_permission("acme", "devs", "acme/app", Level.READ, actor=owner)
    teams = await svc.teams.list_repository_teams("acme/app", actor=owner)
    assert [(t.team, t.level) for t in teams] == [("devs", Level.READ), ("ops", Level.ADMIN)]
    with pytest.raises(Denied):
        await svc.teams.list_repository_teams("acme/app", actor=dev)  # sees it, does not administer it
    with pytest.raises(NotFound):
        await svc.teams.list_repository_teams("acme/app", actor=stranger)  # a private repository: not even seen


async def test_collaborators_on_user_repositories(db: Database, svc: Services) -> None:
    alice = await make_user(db, "alice")
    bob = await make_user(db, "bobby")
    carol = await make_user(db, "carol")
    await make_org(db, "acme", owners=[alice])
    await make_repo(db, "alice/app")
    await make_repo(db, "acme/app")
    info = await svc.collaborators.set_collaborator("alice/app", "bobby", Level.WRITE, actor=alice)
    assert (info.username, info.level) == ("bobby", Level.WRITE)
    assert await level(db, bob, "alice/app") == Level.WRITE
    with pytest.raises(Denied):
        await svc.collaborators.set_collaborator("alice/app", "carol", Level.READ, actor=bob)  # write is not admin
    with pytest.raises(NotFound):
        await svc.collaborators.set_collaborator("alice/app", "bobby", Level.ADMIN, actor=carol)
    with pytest.raises(Denied):
        await svc.collaborators.set_collaborator("alice/app", "carol", Level.READ, actor=with_token(alice, REPO_WRITE))
    await svc.collaborators.set_collaborator("alice/app", "bobby", Level.ADMIN, actor=with_token(alice, REPO_ADMIN))
    await svc.collaborators.set_collaborator("alice/app", "carol", Level.READ, actor=bob)  # admins manage too
    with pytest.raises(Invalid):
        await svc.collaborators.set_collaborator("acme/app", "bobby", Level.READ, actor=alice)  # orgs use teams
    with pytest.raises(Invalid):
        await svc.collaborators.set_collaborator("alice/app", "alice", Level.READ, actor=OPEN)
    with pytest.raises(NotFound):
        await svc.collaborators.set_collaborator("alice/missing", "bobby", Level.READ, actor=alice)
    listed = await svc.collaborators.list_collaborators("alice/app", actor=alice)
    assert [(c.username, c.level) for c in listed] == [("bobby", Level.ADMIN), ("carol", Level.READ)]
    await svc.collaborators.remove_collaborator("alice/app", "carol", actor=alice)
    assert await level(db, carol, "alice/app") == Level.NONE
    with pytest.raises(NotFound):
        await svc.collaborators.remove_collaborator("alice/app", "carol", actor=alice)
    actions = [e["action"] for e in await audit(db, "alice")]
    assert actions == ["repo.permission.change"] * 4
