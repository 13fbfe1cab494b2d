"""Organizations, members, teams (Docker Hub's groups) and their repository permissions, collaborators and
robot accounts through the Hub API, on a server with authentication on: response shapes, who may do what
(owner, member, another user, administrator, anonymous), grants taking effect on ``/v2/token``, one-time robot
secrets, and validation errors as problem+json."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

from tests.support.checks import problem, unique, wait_for
from tests.support.hub_accounts import (
    ORG_FIELDS,
    PAGE_FIELDS,
    PASSWORD,
    ROBOT_FIELDS,
    Accounts,
    grant_actions,
    is_rfc3339_utc,
    ok,
    token_status,
)
from tests.support.oci import push_image

# Organizations


def test_organization_shape_and_who_may_change_it(hub: Accounts) -> None:
    owner, member, stranger = hub.user("owner"), hub.user("member"), hub.user("stranger")
    name = unique("org")
    body = {
        "orgname": name,
        "full_name": "Acme Inc.",
        "company": "Acme",
        "location": "Here",
        "profile_url": "https://acme.example",
    }
    created = ok(hub.as_user(owner).post("/api/v2/orgs", json=body), 201)
    assert set(created) == ORG_FIELDS
    assert {k: created[k] for k in body if k != "orgname"} == {k: v for k, v in body.items() if k != "orgname"}
    assert created["orgname"] == name
    assert created["type"] == "Organization"
    assert created["default_private"] is True
    assert created["description"] == ""
    assert created["gravatar_url"] == ""
    assert isinstance(created["id"], int)
    assert is_rfc3339_utc(created["date_joined"])
    assert ok(hub.anon.get(f"/api/v2/orgs/{name}")) == created
    ok(hub.as_user(owner).post(f"/api/v2/orgs/{name}/members", json={"member": member}), 201)
    problem(hub.as_user(member).patch(f"/api/v2/orgs/{name}", json={"full_name": "x"}), 403)
    problem(hub.as_user(stranger).patch(f"/api/v2/orgs/{name}", json={"full_name": "x"}), 403)
    problem(hub.anon.patch(f"/api/v2/orgs/{name}", json={"full_name": "x"}), 401)
    changed = ok(
        hub.as_user(owner).patch(
            f"/api/v2/orgs/{name}", json={"description": "We make things", "default_private": False}
        )
    )
    assert changed["description"] == "We make things"
    assert changed["default_private"] is False
    assert ok(hub.admin.patch(f"/api/v2/orgs/{name}", json={"location": "There"}))["location"] == "There"
    # The user's organizations, with their role.
    mine = ok(hub.as_user(member).get("/api/v2/user/orgs"))
    assert set(mine) == PAGE_FIELDS
    assert mine["count"] == 1
    assert mine["results"][0]["orgname"] == name
    assert mine["results"][0]["role"] == "member"
    assert set(mine["results"][0]) == ORG_FIELDS | {"role"}
    problem(hub.anon.get("/api/v2/orgs/nosuchorg1"), 404)
    problem(hub.anon.get(f"/api/v2/orgs/{owner}"), 404)  # a user is not an organization


def test_organization_creation_rules(hub: Accounts) -> None:
    user, other = hub.user(), hub.user()
    problem(hub.anon.post("/api/v2/orgs", json={"orgname": unique("org")}), 401)
    problem(hub.as_user(user).post("/api/v2/orgs", json={"orgname": other}), 409)  # names are shared with users
    problem(hub.as_user(user).post("/api/v2/orgs", json={"orgname": unique("org"), "owner": other}), 403)
    token = hub.pat(user, "repo:admin")["token"]
    problem(hub.client(auth=(user, token)).post("/api/v2/orgs", json={"orgname": unique("org")}), 403)
    for bad in (
        {"orgname": "No"},
        {"orgname": "has-dash"},
        {},
        {"orgname": unique("org"), "company": "x" * 300},
        {"orgname": unique("org"), "profile_url": "javascript:alert(1)"},
    ):
        problem(hub.as_user(user).post("/api/v2/orgs", json=bad), 422)
    problem(hub.as_user(user).post("/api/v2/orgs", json={"orgname": "library"}), 400)
    # An administrator makes another user the first owner.
    name = unique("org")
    ok(hub.admin.post("/api/v2/orgs", json={"orgname": name, "owner": other}), 201)
    members = ok(hub.as_user(other).get(f"/api/v2/orgs/{name}/members"))["results"]
    assert [_summary(m) for m in members] == [{"username": other, "full_name": "", "role": "Owner"}]
    problem(hub.admin.post("/api/v2/orgs", json={"orgname": unique("org"), "owner": "nosuchuser1"}), 404)


MEMBER_FIELDS = {
    "id",
    "username",
    "full_name",
    "company",
    "location",
    "profile_url",
    "gravatar_email",
    "gravatar_url",
    "type",
    "date_joined",
    "email",
    "role",
    "groups",
    "is_guest",
}


def _summary(member: dict[str, object]) -> dict[str, object]:
    return {key: member[key] for key in ("username", "full_name", "role")}


def test_members(hub: Accounts) -> None:
    owner, member, stranger = hub.user("owner"), hub.user("member"), hub.user("stranger")
    org = hub.org(owner)
    path = f"/api/v2/orgs/{org}/members"
    added = ok(hub.as_user(owner).post(path, json={"member": member}), 201)
    assert set(added) == MEMBER_FIELDS
    assert _summary(added) == {"username": member, "full_name": "", "role": "Member"}
    assert added["email"] == f"{member}@example.com"  # owners see e-mail addresses
    assert (added["type"], added["groups"], added["is_guest"]) == ("User", [], False)
    assert added["id"].isdigit()
    assert is_rfc3339_utc(added["date_joined"])
    problem(hub.as_user(owner).post(path, json={"member": member}), 409)
    problem(hub.as_user(owner).post(path, json={"member": "nosuchuser1"}), 404)
    problem(hub.as_user(owner).post(path, json={"member": stranger, "role": "king"}), 422)
    problem(hub.as_user(member).post(path, json={"member": stranger}), 403)
    problem(hub.anon.post(path, json={"member": stranger}), 401)
    listed = ok(hub.as_user(member).get(path))
    assert set(listed) == PAGE_FIELDS
    assert listed["count"] == 2
    assert {m["username"]: m["role"] for m in listed["results"]} == {owner: "Owner", member: "Member"}
    assert ["email" in m for m in listed["results"]] == [False, False]  # members do not see e-mail addresses
    by_owner = ok(hub.as_user(owner).get(path, params={"role": "member"}))["results"]
    assert [(m["username"], m["email"]) for m in by_owner] == [(member, f"{member}@example.com")]
    assert [m["username"] for m in ok(hub.as_user(owner).get(path, params={"search": owner[2:]}))["results"]] == [owner]
    problem(hub.as_user(owner).get(path, params={"role": "king"}), 422)
    problem(hub.as_user(stranger).get(path), 403)
    problem(hub.anon.get(path), 401)
    assert ok(hub.as_user(member).get(f"{path}/{owner}"))["role"] == "Owner"
    problem(hub.as_user(member).get(f"{path}/{stranger}"), 404)
    # Roles: owners promote and demote; the last owner stays.
    problem(hub.as_user(member).put(f"{path}/{member}", json={"role": "owner"}), 403)
    problem(hub.as_user(owner).put(f"{path}/{owner}", json={"role": "member"}), 409)
    assert ok(hub.as_user(owner).put(f"{path}/{member}", json={"role": "owner"}))["role"] == "Owner"
    assert ok(hub.as_user(member).put(f"{path}/{owner}", json={"role": "member"}))["role"] == "Member"
    problem(hub.as_user(owner).patch(f"/api/v2/orgs/{org}", json={"full_name": "x"}), 403)
    problem(hub.as_user(member).delete(f"{path}/{member}"), 409)  # now the only owner
    # Members leave by themselves; others are removed by owners only.
    problem(hub.as_user(stranger).delete(f"{path}/{owner}"), 403)
    response = hub.as_user(owner).delete(f"{path}/{owner}")
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.as_user(member).delete(f"{path}/{owner}"), 404)


def test_deleting_an_organization(hub: Accounts) -> None:
    owner, member = hub.user("owner"), hub.user("member")
    org = hub.org(owner, member)
    push_image(hub.admin, f"{org}/app")
    problem(hub.as_user(member).delete(f"/api/v2/orgs/{org}"), 403)
    problem(hub.anon.delete(f"/api/v2/orgs/{org}"), 401)
    response = hub.as_user(owner).delete(f"/api/v2/orgs/{org}")
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.anon.get(f"/api/v2/orgs/{org}"), 404)
    assert hub.admin.get(f"/v2/{org}/app/tags/list").status_code == 404
    assert ok(hub.as_user(member).get("/api/v2/user/orgs"))["count"] == 0


# Teams

TEAM_MEMBER_FIELDS = {
    "id",
    "username",
    "full_name",
    "company",
    "location",
    "profile_url",
    "gravatar_email",
    "gravatar_url",
    "type",
    "date_joined",
    "email",
}


def test_teams_members_and_permissions(hub: Accounts) -> None:
    owner, member, newcomer, stranger = hub.user("owner"), hub.user("member"), hub.user("new"), hub.user("x")
    org = hub.org(owner, member)
    push_image(hub.admin, f"{org}/app")
    teams = f"/api/v2/orgs/{org}/groups"
    team = ok(hub.as_user(owner).post(teams, json={"name": "devs", "description": "Developers"}), 201)
    assert set(team) == {"id", "uuid", "name", "description", "member_count"}
    assert str(uuid.UUID(team["uuid"])) == team["uuid"]
    assert team["name"] == "devs"
    assert team["description"] == "Developers"
    assert team["member_count"] == 0
    problem(hub.as_user(owner).post(teams, json={"name": "devs"}), 409)
    problem(hub.as_user(owner).post(teams, json={"name": "bad name!"}), 422)
    problem(hub.as_user(member).post(teams, json={"name": "ops"}), 403)
    problem(hub.anon.post(teams, json={"name": "ops"}), 401)
    assert ok(hub.as_user(member).get(teams))["results"] == [team]
    assert ok(hub.as_user(member).get(f"{teams}/devs")) == team
    problem(hub.as_user(stranger).get(teams), 403)
    problem(hub.anon.get(teams), 401)
    problem(hub.as_user(member).get(f"{teams}/nope"), 404)
    # Members: a user outside the organization joins it as a member.
    seat = ok(hub.as_user(owner).post(f"{teams}/devs/members", json={"member": newcomer}))
    assert set(seat) == TEAM_MEMBER_FIELDS
    assert (seat["username"], seat["full_name"], seat["email"]) == (newcomer, "", f"{newcomer}@example.com")
    problem(hub.as_user(owner).post(f"{teams}/devs/members", json={"member": newcomer}), 409)
    problem(hub.as_user(member).post(f"{teams}/devs/members", json={"member": stranger}), 403)
    joined = ok(hub.as_user(newcomer).get(f"/api/v2/orgs/{org}/members/{newcomer}"))
    assert (joined["role"], joined["groups"]) == ("Member", ["devs"])
    assert ok(hub.as_user(member).get(f"{teams}/devs/members"))["results"] == [
        {k: v for k, v in seat.items() if k != "email"}
    ]
    assert ok(hub.as_user(owner).get(f"{teams}/devs/members"))["results"] == [seat]
    assert ok(hub.as_user(member).get(f"{teams}/devs"))["member_count"] == 1
    # Permissions: the team's grant is what its members get from /v2/token.
    newcomer_auth = (newcomer, PASSWORD)
    assert grant_actions(hub.anon, f"{org}/app", newcomer_auth) == []
    granted = ok(hub.as_user(owner).put(f"{teams}/devs/repositories/app", json={"permission": "write"}))
    assert granted == {"repository": f"{org}/app", "permission": "write"}
    assert grant_actions(hub.anon, f"{org}/app", newcomer_auth) == ["pull", "push"]
    problem(hub.as_user(member).put(f"{teams}/devs/repositories/app", json={"permission": "admin"}), 403)
    problem(hub.as_user(owner).put(f"{teams}/devs/repositories/app", json={"permission": "owner"}), 422)
    listed = ok(hub.as_user(member).get(f"{teams}/devs/repositories"))
    assert set(listed) == PAGE_FIELDS
    assert listed["results"] == [granted]
    # Deeper names are reachable; a missing repository is created by the grant.
    nested = ok(hub.as_user(owner).put(f"{teams}/devs/repositories/tools/cli", json={"permission": "read"}))
    assert nested == {"repository": f"{org}/tools/cli", "permission": "read"}
    assert hub.as_user(owner).delete(f"{teams}/devs/repositories/tools/cli").status_code == 204
    problem(hub.as_user(owner).delete(f"{teams}/devs/repositories/tools/cli"), 404)
    # Rename, take a member out, delete.
    renamed = ok(hub.as_user(owner).patch(f"{teams}/devs", json={"name": "builders", "description": ""}))
    assert renamed["name"] == "builders"
    assert renamed["description"] == ""
    assert renamed["id"] == team["id"]
    problem(hub.as_user(owner).get(f"{teams}/devs"), 404)
    problem(hub.as_user(member).delete(f"{teams}/builders/members/{newcomer}"), 403)
    assert hub.as_user(owner).delete(f"{teams}/builders/members/{newcomer}").status_code == 204
    assert grant_actions(hub.anon, f"{org}/app", newcomer_auth) == []
    problem(hub.as_user(owner).delete(f"{teams}/builders/members/{newcomer}"), 404)
    problem(hub.as_user(member).delete(f"{teams}/builders"), 403)
    response = hub.as_user(owner).delete(f"{teams}/builders")
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.as_user(owner).get(f"{teams}/builders"), 404)


def test_docker_hub_repository_groups(hub: Accounts) -> None:
    owner, member = hub.user("owner"), hub.user("member")
    org = hub.org(owner, member)
    push_image(hub.admin, f"{org}/app")
    team = ok(hub.as_user(owner).post(f"/api/v2/orgs/{org}/groups", json={"name": "qa"}), 201)
    path = f"/api/v2/repositories/{org}/app/groups"
    assert ok(hub.as_user(owner).get(path))["results"] == []
    by_id = ok(hub.as_user(owner).post(path, json={"group_id": team["id"], "permission": "read"}))
    assert by_id == {"group_name": "qa", "group_id": team["id"], "permission": "read"}
    by_name = ok(hub.as_user(owner).post(path, json={"group_name": "qa", "permission": "admin"}))
    assert by_name == {"group_name": "qa", "group_id": team["id"], "permission": "admin"}
    listed = ok(hub.as_user(owner).get(path))
    assert set(listed) == PAGE_FIELDS
    assert listed["results"] == [by_name]
    problem(hub.as_user(owner).post(path, json={"group_id": team["id"], "group_name": "qa", "permission": "read"}), 422)
    problem(hub.as_user(owner).post(path, json={"permission": "read"}), 422)
    problem(hub.as_user(owner).post(path, json={"group_id": 999999, "permission": "read"}), 404)
    problem(hub.as_user(member).get(path), 404)  # a member without a grant does not see the private repository
    problem(hub.anon.get(path), 401)
    problem(hub.as_user(member).post(path, json={"group_name": "qa", "permission": "read"}), 403)
    assert hub.as_user(owner).delete(f"{path}/{team['id']}").status_code == 204
    assert ok(hub.as_user(owner).get(path))["results"] == []
    problem(hub.as_user(owner).delete(f"{path}/{team['id']}"), 404)


# Collaborators


def test_collaborators_on_a_users_repository(hub: Accounts) -> None:
    owner, friend, stranger = hub.user("owner"), hub.user("friend"), hub.user("stranger")
    push_image(hub.admin, f"{owner}/app")
    path = f"/api/v2/repositories/{owner}/app/collaborators"
    friend_auth = (friend, PASSWORD)
    assert grant_actions(hub.anon, f"{owner}/app", friend_auth) == []
    added = ok(hub.as_user(owner).put(f"{path}/{friend}", json={"permission": "read"}))
    assert added == {"username": friend, "permission": "read"}
    assert grant_actions(hub.anon, f"{owner}/app", friend_auth) == ["pull"]
    assert ok(hub.as_user(owner).put(f"{path}/{friend}", json={"permission": "write"}))["permission"] == "write"
    listed = ok(hub.as_user(owner).get(path))
    assert set(listed) == PAGE_FIELDS
    assert listed["results"] == [{"username": friend, "permission": "write"}]
    # The collaborator sees the repository but does not administer it; a stranger does not see it at all.
    problem(hub.as_user(friend).get(path), 403)
    problem(hub.as_user(friend).put(f"{path}/{stranger}", json={"permission": "read"}), 403)
    problem(hub.as_user(stranger).get(path), 404)
    problem(hub.anon.get(path), 401)
    problem(hub.as_user(owner).put(f"{path}/{owner}", json={"permission": "read"}), 400)
    problem(hub.as_user(owner).put(f"{path}/{friend}", json={"permission": "none"}), 422)
    problem(hub.as_user(owner).put(f"{path}/nosuchuser1", json={"permission": "read"}), 404)
    assert ok(hub.admin.get(path))["count"] == 1
    response = hub.as_user(owner).delete(f"{path}/{friend}")
    assert response.status_code == 204
    assert response.content == b""
    assert grant_actions(hub.anon, f"{owner}/app", friend_auth) == []
    problem(hub.as_user(owner).delete(f"{path}/{friend}"), 404)
    # Organizations grant through teams.
    org = hub.org(owner)
    push_image(hub.admin, f"{org}/app")
    problem(
        hub.as_user(owner).put(f"/api/v2/repositories/{org}/app/collaborators/{friend}", json={"permission": "read"}),
        400,
    )


# Robots


def test_robots(hub: Accounts) -> None:
    owner, member = hub.user("owner"), hub.user("member")
    org = hub.org(owner, member)
    push_image(hub.admin, f"{org}/app")
    robots = f"/api/v2/orgs/{org}/robots"
    body = {
        "name": "deployer",
        "description": "CI",
        "permissions": [{"repository": f"{org}/app", "permission": "read"}],
    }
    created = ok(hub.as_user(owner).post(robots, json=body), 201)
    assert set(created) == ROBOT_FIELDS | {"secret"}
    assert created["name"] == f"{org}+deployer"
    assert created["shortname"] == "deployer"
    assert created["org"] == org
    assert created["description"] == "CI"
    assert created["is_active"] is True
    assert created["expires_at"] is None  # never, unless asked
    assert created["permissions"] == body["permissions"]
    assert is_rfc3339_utc(created["created_at"])
    secret = created["secret"]
    robot_auth = (created["name"], secret)
    assert grant_actions(hub.anon, f"{org}/app", robot_auth) == ["pull"]
    shown = ok(hub.as_user(owner).get(f"{robots}/deployer"))
    assert set(shown) == ROBOT_FIELDS
    assert shown == {k: v for k, v in created.items() if k != "secret"}
    assert ok(hub.as_user(owner).get(f"{robots}/{org}+deployer")) == shown
    listed = ok(hub.as_user(owner).get(robots))
    assert set(listed) == PAGE_FIELDS
    assert listed["results"] == [shown]
    assert secret not in hub.as_user(owner).get(robots).text
    # Owners only.
    problem(hub.as_user(member).get(robots), 403)
    problem(hub.as_user(member).post(robots, json={"name": "other"}), 403)
    problem(hub.anon.get(robots), 401)
    problem(hub.as_user(owner).post(robots, json=body), 409)
    problem(hub.as_user(owner).post(robots, json={"name": "Bad-Name"}), 422)
    outside = {"name": "outside", "permissions": [{"repository": f"{owner}/app", "permission": "read"}]}
    problem(hub.as_user(owner).post(robots, json=outside), 400)
    twice = {
        "name": "twice",
        "permissions": [body["permissions"][0], {"repository": f"{org}/app", "permission": "write"}],
    }
    problem(hub.as_user(owner).post(robots, json=twice), 422)
    problem(hub.as_user(owner).get(f"{robots}/nope"), 404)
    # Change the permissions, then disable: refused at once.
    changed = ok(
        hub.as_user(owner).patch(
            f"{robots}/deployer", json={"permissions": [{"repository": f"{org}/app", "permission": "write"}]}
        )
    )
    assert changed["permissions"] == [{"repository": f"{org}/app", "permission": "write"}]
    assert grant_actions(hub.anon, f"{org}/app", robot_auth) == ["pull", "push"]
    assert ok(hub.as_user(owner).patch(f"{robots}/deployer", json={"is_active": False}))["is_active"] is False
    assert token_status(hub.anon, robot_auth) == 401
    assert ok(hub.as_user(owner).patch(f"{robots}/deployer", json={"is_active": True}))["is_active"] is True
    assert token_status(hub.anon, robot_auth) == 200
    # A new secret replaces the old one at once.
    regenerated = ok(hub.as_user(owner).post(f"{robots}/deployer/secret"))
    assert set(regenerated) == {"name", "secret"}
    assert regenerated["secret"] != secret
    assert token_status(hub.anon, robot_auth) == 401
    assert token_status(hub.anon, (created["name"], regenerated["secret"])) == 200
    problem(hub.as_user(member).post(f"{robots}/deployer/secret"), 403)
    # The robot is no user: it has no account of its own to manage.
    problem(hub.client(auth=(created["name"], regenerated["secret"])).get("/api/v2/user"), 403)
    problem(hub.as_user(member).delete(f"{robots}/deployer"), 403)
    response = hub.as_user(owner).delete(f"{robots}/deployer")
    assert response.status_code == 204
    assert response.content == b""
    assert token_status(hub.anon, (created["name"], regenerated["secret"])) == 401
    problem(hub.admin.get(f"{robots}/deployer"), 404)


def test_robots_expire(hub: Accounts) -> None:
    owner = hub.user("owner")
    org = hub.org(owner)
    robots = f"/api/v2/orgs/{org}/robots"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    problem(hub.as_user(owner).post(robots, json={"name": "late", "expires_at": past}), 400)
    naive = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    problem(hub.as_user(owner).post(robots, json={"name": "vague", "expires_at": naive}), 400)
    soon = datetime.now(UTC) + timedelta(seconds=6)
    created = ok(hub.as_user(owner).post(robots, json={"name": "brief", "expires_at": soon.isoformat()}), 201)
    assert abs(datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00")) - soon) < timedelta(seconds=1)
    auth = (created["name"], created["secret"])
    assert token_status(hub.anon, auth) == 200
    # Past its date the robot is refused like a wrong secret, everywhere credentials are checked.
    wait_for(lambda: token_status(hub.anon, auth) == 401, timeout=30, what="the robot expired")
    assert hub.client(auth=auth).get("/v2/").status_code == 401
    # A patch without expires_at keeps it; its owner can clear it (never) or move it.
    assert ok(hub.as_user(owner).patch(f"{robots}/brief", json={"description": "x"}))["expires_at"] is not None
    problem(hub.as_user(owner).patch(f"{robots}/brief", json={"expires_at": past}), 400)
    assert ok(hub.as_user(owner).patch(f"{robots}/brief", json={"expires_at": None}))["expires_at"] is None
    assert token_status(hub.anon, auth) == 200
    later = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    assert ok(hub.as_user(owner).patch(f"{robots}/brief", json={"expires_at": later}))["expires_at"] is not None
    assert token_status(hub.anon, auth) == 200


# Settings (Docker Hub's org settings)


def test_organization_settings(hub: Accounts) -> None:
    owner, member, stranger = hub.user("owner"), hub.user("member"), hub.user("stranger")
    org = hub.org(owner, member)
    path = f"/api/v2/orgs/{org}/settings"
    off = {"enabled": False, "allow_official_images": True, "allow_verified_publishers": True}
    assert ok(hub.as_user(member).get(path)) == {
        "restricted_images": off,
        "default_private": True,
        "require_two_factor": False,
    }
    problem(hub.as_user(stranger).get(path), 403)
    problem(hub.anon.get(path), 401)
    changed = ok(hub.as_user(owner).put(path, json={"restricted_images": off, "default_private": False}))
    assert changed == {"restricted_images": off, "default_private": False, "require_two_factor": False}
    assert ok(hub.anon.get(f"/api/v2/orgs/{org}"))["default_private"] is False
    problem(hub.as_user(member).put(path, json={"restricted_images": off}), 403)
    # What Dockyard cannot enforce, and what it does not know, is refused.
    problem(hub.as_user(owner).put(path, json={"restricted_images": {**off, "enabled": True}}), 422)
    problem(hub.as_user(owner).put(path, json={"restricted_images": off, "sso_enforced": True}), 422)
    problem(hub.as_user(owner).put(path, json={"default_private": True}), 422)  # Hub requires restricted_images
    assert ok(hub.as_user(owner).get(path))["default_private"] is False
    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert actions.count("org.update") == 1


def test_editors_push_everywhere_but_manage_nothing(hub: Accounts) -> None:
    owner, editor = hub.user("owner"), hub.user("editor")
    org = hub.org(owner, editor)
    push_image(hub.admin, f"{org}/app")
    members = f"/api/v2/orgs/{org}/members"
    assert ok(hub.as_user(owner).put(f"{members}/{editor}", json={"role": "editor"}))["role"] == "Editor"
    assert grant_actions(hub.anon, f"{org}/app", (editor, PASSWORD)) == ["pull", "push"]
    assert grant_actions(hub.anon, f"{org}/new", (editor, PASSWORD)) == []  # creating repositories is the owners'
    listed = ok(hub.as_user(editor).get(f"/api/v2/namespaces/{org}/repositories"))
    assert [r["name"] for r in listed["results"]] == ["app"]
    problem(hub.as_user(editor).delete(f"/api/v2/namespaces/{org}/repositories/app"), 403)
    problem(hub.as_user(editor).post(members, json={"member": hub.user()}), 403)
    problem(hub.as_user(editor).post(f"/api/v2/orgs/{org}/groups", json={"name": "devs"}), 403)
    problem(hub.as_user(editor).get(f"{members}/export"), 403)
    assert [m["role"] for m in ok(hub.as_user(owner).get(members, params={"role": "editor"}))["results"]] == ["Editor"]
    exported = hub.as_user(owner).get(f"{members}/export")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    assert exported.headers["content-disposition"].startswith(f'attachment;filename="{org}-members-')
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["Username"], r["Permission"], r["Role"], r["Type"]) for r in rows] == sorted(
        [(owner, "Owner", "Owner", "User"), (editor, "Member", "Editor", "User")]
    )
    assert rows[0]["Email"].endswith("@example.com")
