"""Matrix rows for every Hub API route (``/api/v2``, ``/v1``): how to call it as each principal and what each
must get. Destructive calls act on a fresh target made for each principal, so that every principal meets the
same state."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pyotp

from tests.security.rows_oci import LEVEL, Call, Expect
from tests.security.world import (
    ANON,
    DEAD,
    OAT,
    OWNER,
    PAT_READ,
    PRINCIPALS,
    READER,
    ROBOT,
    STRANGER,
    TEAM_ADMIN,
    WRITER,
    World,
)
from tests.support.checks import unique

USERS = {OWNER, READER, WRITER, TEAM_ADMIN, STRANGER}  # signed in with their own password
MEMBERS = {OWNER, READER, WRITER, TEAM_ADMIN, PAT_READ}  # of the organization (PAT_READ is the owner)
# The one status of a refusal (docs/auth.md, "Who decides: hide or deny"): 404 where the caller may not see the
# resource (a private repository, someone else's token or webhook), 403 where it may (a namespace, a repository
# it reads). Every row names it; no row accepts "403 or 404".
DENIED, HIDDEN = 403, 404


def by(allowed: set[str], ok: int, *, denied: int, anon: int = 401) -> Expect:
    """``allowed`` principals get ``ok``; other live ones ``denied``; anonymous ``anon`` unless allowed; dead
    credentials 401."""
    out: Expect = {}
    for principal in PRINCIPALS:
        if principal in DEAD:
            out[principal] = 401
        elif principal == ANON:
            out[principal] = ok if ANON in allowed else anon
        else:
            out[principal] = ok if principal in allowed else denied
    return out


def everyone(ok: int) -> Expect:
    return by(set(PRINCIPALS), ok, denied=ok)


def repo_level(need: int, ok: int, *, anon: int | None = None) -> Expect:
    """On the private repository: enough level → ok; may see it (read) → 403; may not → 404."""
    out = by(
        {p for p, level in LEVEL.items() if level >= need}, ok, denied=HIDDEN, anon=anon or (404 if need == 1 else 401)
    )
    for principal, level in LEVEL.items():
        if level < need:
            out[principal] = DENIED if level >= 1 else HIDDEN
    return out


def bound(template: str, path: Callable[[World, str, str], str]) -> Callable[[World, str], str]:
    """``path`` given ``template`` as it is now (a loop's current one) as its last argument, when the row runs."""
    return lambda w, p: path(w, p, template)


def api(
    method: str,
    path: Callable[[World, str], str],
    body: Callable[[World, str], Any] | None = None,
) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        target = path(world, principal)
        payload = body(world, principal) if body is not None else None
        return world.api(principal, method, target, json=payload)

    return call


# -- fresh targets (made by the administrator for each principal) --------------------------------------------


def fresh_repo(world: World) -> str:
    name = f"r{uuid.uuid4().hex[:10]}"
    world.admin_api("POST", f"/api/v2/namespaces/{world.org}/repositories", json={"name": name, "is_private": True})
    return name


def fresh_tag(world: World) -> str:
    tag, _ = world.fresh_image()
    return tag


def fresh_user(world: World) -> str:
    name, _ = world.hub.user("fresh")
    return name


def fresh_org(world: World) -> str:
    return world.hub.org(world.users[OWNER])


def fresh_member(world: World) -> str:
    name = fresh_user(world)
    world.admin_api("POST", f"/api/v2/orgs/{world.org}/members", json={"member": name, "role": "member"})
    return name


def fresh_team(world: World) -> str:
    return world.hub.team(world.org, [], {})


def fresh_team_member(world: World) -> str:
    name = fresh_user(world)
    world.admin_api("POST", f"/api/v2/orgs/{world.org}/groups/{world.teams[READER]}/members", json={"member": name})
    return name


def fresh_grant(world: World) -> str:
    repo = fresh_repo(world)
    world.admin_api(
        "PUT", f"/api/v2/orgs/{world.org}/groups/{world.teams[READER]}/repositories/{repo}", json={"permission": "read"}
    )
    return repo


def fresh_robot(world: World) -> str:
    return world.hub.robot(world.org, {}).name.split("+", 1)[1]


def owner_token(world: World) -> str:
    name, password = world.creds[OWNER]
    with httpx.Client(base_url=world.server.url, timeout=30, auth=(name, password)) as client:
        response = client.post("/api/v2/access-tokens", json={"token_label": "matrix", "scopes": ["repo:read"]})
    assert response.status_code == 201, response.text
    return str(response.json()["uuid"])


def fresh_org_token(world: World) -> str:
    resources = [{"type": "TYPE_REPO", "path": world.repo, "scopes": ["repo-pull"]}]
    made = world.admin_api(
        "POST", f"/api/v2/orgs/{world.org}/access-tokens", json={"label": "m", "resources": resources}
    )
    return str(made["id"])


def fresh_collaborator(world: World) -> str:
    name = fresh_user(world)
    world.admin_api(
        "PUT", f"/api/v2/repositories/{world.users[OWNER]}/mine/collaborators/{name}", json={"permission": "read"}
    )
    return name


def team_id(world: World, team: str) -> int:
    listed = world.admin_api("GET", f"/api/v2/orgs/{world.org}/groups/{team}")
    return int(listed["id"])


# -- rows -------------------------------------------------------------------------------------------------------

APP = "app"
NS = "/api/v2/namespaces/{org}/repositories"
OWNER_ONLY = {OWNER}
ORG_ADMINS = {OWNER}


def org(world: World) -> str:
    return world.org


ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


def login(path: str, keys: tuple[str, str]) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        name, secret = ("", "") if principal == ANON else world.creds[principal]
        with world.client() as client:
            return client.post(path, json={keys[0]: name, keys[1]: secret})

    return call


login_expect = by(set(PRINCIPALS) - {ANON}, 200, denied=DENIED, anon=422)
row("POST", "/api/v2/auth/token", login("/api/v2/auth/token", ("identifier", "secret")), login_expect)
row("POST", "/api/v2/users/login", login("/api/v2/users/login", ("username", "password")), login_expect)

# Access tokens: only a user signed in with the account's own password manages them.
row("GET", "/api/v2/access-tokens", api("GET", lambda w, p: "/api/v2/access-tokens"), by(USERS, 200, denied=DENIED))
row(
    "POST",
    "/api/v2/access-tokens",
    api("POST", lambda w, p: "/api/v2/access-tokens", lambda w, p: {"token_label": "x", "scopes": ["repo:read"]}),
    by(USERS, 201, denied=DENIED),
)
# Another user's token does not exist for them (404); robots and access tokens may not manage tokens at all (403,
# whatever the token).
token_denied = {**by({OWNER}, 0, denied=HIDDEN), ROBOT: DENIED, OAT: DENIED, PAT_READ: DENIED}
row(
    "GET",
    "/api/v2/access-tokens/{uuid}",
    api("GET", lambda w, p: f"/api/v2/access-tokens/{owner_token(w)}"),
    {**token_denied, OWNER: 200},
)
row(
    "PATCH",
    "/api/v2/access-tokens/{uuid}",
    api("PATCH", lambda w, p: f"/api/v2/access-tokens/{owner_token(w)}", lambda w, p: {"token_label": "renamed"}),
    {**token_denied, OWNER: 200},
)
row(
    "DELETE",
    "/api/v2/access-tokens/{uuid}",
    api("DELETE", lambda w, p: f"/api/v2/access-tokens/{owner_token(w)}"),
    {**token_denied, OWNER: 204},
)

# Audit logs: the namespace's owners; anyone else is refused (the namespace is public).
row(
    "GET",
    "/api/v2/auditlogs/{account}",
    api("GET", lambda w, p: f"/api/v2/auditlogs/{w.org}"),
    by(OWNER_ONLY, 200, denied=DENIED),
)
row(
    "GET",
    "/api/v2/auditlogs/{account}/actions",
    api("GET", lambda w, p: f"/api/v2/auditlogs/{w.org}/actions"),
    by(OWNER_ONLY, 200, denied=DENIED),
)

# Repositories of a namespace.
for base in ("/api/v2/namespaces/{ns}/repositories", "/api/v2/repositories/{ns}"):
    prefix = base.replace("{ns}", "{org}")
    row("GET", base, api("GET", bound(prefix, lambda w, p, b: b.format(org=w.org))), everyone(200))
row(
    "POST",
    "/api/v2/namespaces/{ns}/repositories",
    api("POST", lambda w, p: f"/api/v2/namespaces/{w.org}/repositories", lambda w, p: {"name": unique("new")}),
    by(ORG_ADMINS, 201, denied=DENIED),
)
for base in ("/api/v2/namespaces/{ns}/repositories/{repo}", "/api/v2/repositories/{ns}/{repo}"):
    single = base.replace("{ns}", "{org}").replace("{repo}", APP)
    row("GET", base, api("GET", bound(single, lambda w, p, b: b.format(org=w.org))), repo_level(1, 200))
    row(
        "PATCH",
        base,
        api("PATCH", bound(single, lambda w, p, b: b.format(org=w.org)), lambda w, p: {"description": f"by {p}"}),
        repo_level(3, 200),
    )
    row(
        "DELETE",
        base,
        api("DELETE", bound(base, lambda w, p, b: b.format(ns=w.org, repo=fresh_grant(w)))),
        # The fresh repository is granted to the readers' team only: they see it; other members do not.
        {**by({OWNER}, 202, denied=HIDDEN), READER: DENIED, PAT_READ: DENIED},
    )
row(
    "HEAD",
    "/api/v2/namespaces/{ns}/repositories/{repo}",
    api("HEAD", lambda w, p: f"/api/v2/namespaces/{w.org}/repositories/{APP}"),
    repo_level(1, 200),
)

# Tags.
for base in ("/api/v2/namespaces/{ns}/repositories/{repo}", "/api/v2/repositories/{ns}/{repo}"):
    row(
        "GET",
        f"{base}/tags",
        api("GET", bound(base, lambda w, p, b: b.format(ns=w.org, repo=APP) + "/tags")),
        repo_level(1, 200),
    )
    row(
        "GET",
        f"{base}/tags/{{tag}}",
        api("GET", bound(base, lambda w, p, b: b.format(ns=w.org, repo=APP) + "/tags/latest")),
        repo_level(1, 200),
    )
    row(
        "DELETE",
        f"{base}/tags/{{tag}}",
        api("DELETE", bound(base, lambda w, p, b: b.format(ns=w.org, repo=APP) + f"/tags/{fresh_tag(w)}")),
        repo_level(3, 204),
    )
row(
    "HEAD",
    "/api/v2/namespaces/{ns}/repositories/{repo}/tags",
    api("HEAD", lambda w, p: f"/api/v2/namespaces/{w.org}/repositories/{APP}/tags"),
    repo_level(1, 200),
)
row(
    "HEAD",
    "/api/v2/namespaces/{ns}/repositories/{repo}/tags/{tag}",
    api("HEAD", lambda w, p: f"/api/v2/namespaces/{w.org}/repositories/{APP}/tags/latest"),
    repo_level(1, 200),
)

# Stars: people who can see the repository; robots have no stars.
star_expect = {**repo_level(1, 204), ROBOT: DENIED, OAT: DENIED, ANON: 401}
row(
    "POST",
    "/api/v2/repositories/{ns}/{repo}/stars",
    api("POST", lambda w, p: f"/api/v2/repositories/{w.org}/{APP}/stars"),
    star_expect,
)
row(
    "DELETE",
    "/api/v2/repositories/{ns}/{repo}/stars",
    api("DELETE", lambda w, p: f"/api/v2/repositories/{w.org}/{APP}/stars"),
    star_expect,
)
row(
    "GET",
    "/api/v2/users/{username}/starred",
    api("GET", lambda w, p: f"/api/v2/users/{w.users[OWNER]}/starred"),
    everyone(200),
)

# Collaborators on the owner's own (user-namespace) repository "mine".
collab_expect = {**by({OWNER}, 200, denied=HIDDEN), PAT_READ: DENIED}
row(
    "GET",
    "/api/v2/repositories/{ns}/{repo}/collaborators",
    api("GET", lambda w, p: f"/api/v2/repositories/{w.users[OWNER]}/mine/collaborators"),
    collab_expect,
)
row(
    "PUT",
    "/api/v2/repositories/{ns}/{repo}/collaborators/{username}",
    api(
        "PUT",
        lambda w, p: f"/api/v2/repositories/{w.users[OWNER]}/mine/collaborators/{fresh_user(w)}",
        lambda w, p: {"permission": "read"},
    ),
    collab_expect,
)
row(
    "DELETE",
    "/api/v2/repositories/{ns}/{repo}/collaborators/{username}",
    api("DELETE", lambda w, p: f"/api/v2/repositories/{w.users[OWNER]}/mine/collaborators/{fresh_collaborator(w)}"),
    {**collab_expect, OWNER: 204},
)

# Team access to a repository, Docker Hub's way.
row(
    "GET",
    "/api/v2/repositories/{ns}/{repo}/groups",
    api("GET", lambda w, p: f"/api/v2/repositories/{w.org}/{APP}/groups"),
    repo_level(3, 200),
)
row(
    "POST",
    "/api/v2/repositories/{ns}/{repo}/groups",
    api(
        "POST",
        lambda w, p: f"/api/v2/repositories/{w.org}/{fresh_repo(w)}/groups",
        lambda w, p: {"group_name": w.teams[READER], "permission": "read"},
    ),
    # Granting a team is the organization's owners' business: refused before the repository is looked up.
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    "/api/v2/repositories/{ns}/{repo}/groups/{group_id}",
    api("DELETE", lambda w, p: f"/api/v2/repositories/{w.org}/{fresh_grant(w)}/groups/{team_id(w, w.teams[READER])}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)

# Organizations.
row(
    "POST",
    "/api/v2/orgs",
    api("POST", lambda w, p: "/api/v2/orgs", lambda w, p: {"orgname": unique("o")}),
    by(USERS, 201, denied=DENIED),
)
row("GET", "/api/v2/orgs/{org}", api("GET", lambda w, p: f"/api/v2/orgs/{w.org}"), everyone(200))
row(
    "PATCH",
    "/api/v2/orgs/{org}",
    api("PATCH", lambda w, p: f"/api/v2/orgs/{w.org}", lambda w, p: {"company": p}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    "/api/v2/orgs/{org}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{fresh_org(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
row(
    "GET",
    "/api/v2/orgs/{org}/members",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/members"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "POST",
    "/api/v2/orgs/{org}/members",
    api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/members", lambda w, p: {"member": fresh_user(w), "role": "member"}),
    by(ORG_ADMINS, 201, denied=DENIED),
)
row(
    "GET",
    "/api/v2/orgs/{org}/settings",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/settings"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "PUT",
    "/api/v2/orgs/{org}/settings",
    api("PUT", lambda w, p: f"/api/v2/orgs/{w.org}/settings", lambda w, p: {"restricted_images": {"enabled": False}}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
OATS = "/api/v2/orgs/{org}/access-tokens"
row(
    "POST",
    OATS,
    api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/access-tokens", lambda w, p: {"label": "m"}),
    by(ORG_ADMINS, 201, denied=DENIED),
)
row("GET", OATS, api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/access-tokens"), by(ORG_ADMINS, 200, denied=DENIED))
row(
    "GET",
    f"{OATS}/{{token_id}}",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/access-tokens/{fresh_org_token(w)}"),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "PATCH",
    f"{OATS}/{{token_id}}",
    api("PATCH", lambda w, p: f"/api/v2/orgs/{w.org}/access-tokens/{fresh_org_token(w)}", lambda w, p: {"label": p}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    f"{OATS}/{{token_id}}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/access-tokens/{fresh_org_token(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
row(
    "GET",
    "/api/v2/orgs/{org}/members/export",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/members/export"),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "GET",
    "/api/v2/orgs/{org}/members/{username}",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/members/{w.users[READER]}"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "PUT",
    "/api/v2/orgs/{org}/members/{username}",
    api("PUT", lambda w, p: f"/api/v2/orgs/{w.org}/members/{fresh_member(w)}", lambda w, p: {"role": "member"}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    "/api/v2/orgs/{org}/members/{username}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/members/{fresh_member(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)

# Teams.
TEAM = "/api/v2/orgs/{org}/groups/{team}"
row(
    "GET",
    "/api/v2/orgs/{org}/groups",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/groups"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "POST",
    "/api/v2/orgs/{org}/groups",
    api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/groups", lambda w, p: {"name": unique("t")}),
    by(ORG_ADMINS, 201, denied=DENIED),
)
row(
    "GET",
    TEAM,
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "PATCH",
    TEAM,
    api("PATCH", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}", lambda w, p: {"description": p}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "PUT",
    TEAM,
    api("PUT", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}", lambda w, p: {"name": w.teams[READER]}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    TEAM,
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{fresh_team(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
row(
    "GET",
    f"{TEAM}/members",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/members"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "POST",
    f"{TEAM}/members",
    api(
        "POST",
        lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/members",
        lambda w, p: {"member": fresh_user(w)},
    ),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    f"{TEAM}/members/{{username}}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/members/{fresh_team_member(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
row(
    "GET",
    f"{TEAM}/repositories",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/repositories"),
    by(MEMBERS, 200, denied=DENIED),
)
row(
    "PUT",
    f"{TEAM}/repositories/{{repo}}",
    api(
        "PUT",
        lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/repositories/{fresh_repo(w)}",
        lambda w, p: {"permission": "read"},
    ),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    f"{TEAM}/repositories/{{repo}}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/groups/{w.teams[READER]}/repositories/{fresh_grant(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)

# Robots: the organization's owners.
ROBOTS = "/api/v2/orgs/{org}/robots"
row("GET", ROBOTS, api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/robots"), by(ORG_ADMINS, 200, denied=DENIED))
row(
    "POST",
    ROBOTS,
    api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/robots", lambda w, p: {"name": "b" + uuid.uuid4().hex[:8]}),
    by(ORG_ADMINS, 201, denied=DENIED),
)
row(
    "GET",
    f"{ROBOTS}/{{name}}",
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/robots/{w.robot_short}"),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "PATCH",
    f"{ROBOTS}/{{name}}",
    api("PATCH", lambda w, p: f"/api/v2/orgs/{w.org}/robots/{fresh_robot(w)}", lambda w, p: {"description": p}),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    f"{ROBOTS}/{{name}}",
    api("DELETE", lambda w, p: f"/api/v2/orgs/{w.org}/robots/{fresh_robot(w)}"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
row(
    "POST",
    f"{ROBOTS}/{{name}}/secret",
    api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/robots/{fresh_robot(w)}/secret"),
    by(ORG_ADMINS, 200, denied=DENIED),
)

# Users. Only administrators list and create users; anyone reads a profile; only the user (signed in with the
# account's own password) changes it — here the owner, keeping its password as it is.
row("GET", "/api/v2/user", api("GET", lambda w, p: "/api/v2/user"), by(USERS | {PAT_READ}, 200, denied=DENIED))
row(
    "GET", "/api/v2/user/orgs", api("GET", lambda w, p: "/api/v2/user/orgs"), by(USERS | {PAT_READ}, 200, denied=DENIED)
)
row("GET", "/api/v2/users", api("GET", lambda w, p: "/api/v2/users"), by(set(), 200, denied=DENIED))
row(
    "POST",
    "/api/v2/users",
    api("POST", lambda w, p: "/api/v2/users", lambda w, p: {"username": unique("n"), "password": "a-long-password"}),
    by(set(), 201, denied=DENIED),
)
row("GET", "/api/v2/users/{username}", api("GET", lambda w, p: f"/api/v2/users/{w.users[OWNER]}"), everyone(200))
row(
    "PATCH",
    "/api/v2/users/{username}",
    api("PATCH", lambda w, p: f"/api/v2/users/{w.users[OWNER]}", lambda w, p: {"location": p}),
    {**by({OWNER}, 200, denied=DENIED)},
)
row(
    "DELETE",
    "/api/v2/users/{username}",
    api("DELETE", lambda w, p: f"/api/v2/users/{fresh_user(w)}"),
    by(set(), 204, denied=DENIED),
)


def ending_sessions(call: Call) -> Call:
    """A call that may end the owner's sessions (their API token with them): the owner signs in again after."""

    def ended(world: World, principal: str, verb: str) -> httpx.Response:
        response = call(world, principal, verb)
        if response.status_code == 204:
            world.signed_out(OWNER)
        return response

    return ended


row(
    "PUT",
    "/api/v2/users/{username}/password",
    ending_sessions(
        api(
            "PUT",
            lambda w, p: f"/api/v2/users/{w.users[OWNER]}/password",
            lambda w, p: {"current_password": w.creds[OWNER][1], "new_password": w.creds[OWNER][1]},
        )
    ),
    by({OWNER}, 204, denied=DENIED),
)
# Sign out everywhere: the user (with a password sign-in) or a site administrator.
row(
    "POST",
    "/api/v2/users/{username}/revoke-sessions",
    ending_sessions(api("POST", lambda w, p: f"/api/v2/users/{w.users[OWNER]}/revoke-sessions")),
    by({OWNER}, 204, denied=DENIED),
)


# Two-factor sign-in: only the user, with the account's own password, sees and changes it; site administrators
# (none in the matrix) reset it. The matrix never turns it on for its owner (that would change how the owner signs
# in for the other rows): a wrong first code is the owner's 400, turning off what is not on its 409.
def _two_factor(suffix: str, body: dict[str, str] | None = None, method: str = "POST") -> Call:
    return api(
        method, lambda w, p: f"/api/v2/users/{w.users[OWNER]}/2fa{suffix}", (lambda w, p: body) if body else None
    )


def _enrol_then_confirm_wrong(world: World, principal: str, verb: str) -> httpx.Response:
    path = f"/api/v2/users/{world.users[OWNER]}/2fa"
    made = world.api(principal, "POST", f"{path}/enrolment")
    wrong = "000000"
    if made.status_code == 201:
        right = pyotp.TOTP(made.json()["secret"])
        wrong = next(
            c for c in ("000000", "111111", "222222") if c not in {right.at(time.time() + d) for d in (-30, 0, 30)}
        )
    return world.api(principal, "POST", f"{path}/confirm", json={"code": wrong})


row("GET", "/api/v2/users/{username}/2fa", _two_factor("", method="GET"), by({OWNER}, 200, denied=DENIED))
row("POST", "/api/v2/users/{username}/2fa/enrolment", _two_factor("/enrolment"), by({OWNER}, 201, denied=DENIED))
row("POST", "/api/v2/users/{username}/2fa/confirm", _enrol_then_confirm_wrong, by({OWNER}, 400, denied=DENIED))
row(
    "POST",
    "/api/v2/users/{username}/2fa/recovery-codes",
    _two_factor("/recovery-codes", {"code": "123456"}),
    by({OWNER}, 409, denied=DENIED),
)
row(
    "POST",
    "/api/v2/users/{username}/2fa/disable",
    _two_factor("/disable", {"code": "123456"}),
    by({OWNER}, 409, denied=DENIED),
)
row("DELETE", "/api/v2/users/{username}/2fa", _two_factor("", method="DELETE"), by(set(), 204, denied=DENIED))
row(
    "POST",
    "/api/v2/users/2fa-login",
    api("POST", lambda w, p: "/api/v2/users/2fa-login", lambda w, p: {"login_2fa_token": "unknown", "code": "123456"}),
    everyone(401),
)

# docker search: anyone (it shows what the caller may see).
row("GET", "/v1/search", api("GET", lambda w, p: "/v1/search?q=app"), everyone(200))
