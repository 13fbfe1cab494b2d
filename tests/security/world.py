"""The cast of the permission matrix: one organization with a private repository, teams that read, write and
administer it, a stranger from another organization, a pull-only robot, personal access tokens (read-only,
expired, revoked) and a disabled user — all on one server with authentication on.

``World.call`` performs a request as a principal the way real clients do: on ``/v2`` it fetches a token for the
route's scope from ``/v2/token`` with the principal's credentials (a refused token request is the answer), on the
Hub API it uses an API token from ``/api/v2/auth/token`` (or, when that is refused, the raw credentials).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.support.hub import HubAdmin, pat
from tests.support.oci import push_image
from tests.support.server import Server

ANON = "anonymous"
OWNER = "owner"
READER = "team_reader"
WRITER = "team_writer"
TEAM_ADMIN = "team_admin"
STRANGER = "other_org_member"
ROBOT = "robot_pull_one_repo"
OAT = "org_token_pull_one_repo"  # an organization access token: user name = the organization
PAT_READ = "pat_repo_read"
PAT_EXPIRED = "pat_expired"
PAT_REVOKED = "pat_revoked"
DISABLED = "disabled_user"

PRINCIPALS = (
    ANON,
    OWNER,
    READER,
    WRITER,
    TEAM_ADMIN,
    STRANGER,
    ROBOT,
    OAT,
    PAT_READ,
    PAT_EXPIRED,
    PAT_REVOKED,
    DISABLED,
)
DEAD = (PAT_EXPIRED, PAT_REVOKED, DISABLED)  # credentials that no longer authenticate


@dataclass
class World:
    server: Server
    hub: HubAdmin
    org: str = ""
    other_org: str = ""
    repo: str = ""  # private, in org
    public_repo: str = ""  # public, in org
    digest: str = ""  # the manifest tagged "latest" in repo
    blob: str = ""  # a layer of it
    manifest: bytes = b""  # its bytes (an OCI image manifest)
    users: dict[str, str] = field(default_factory=dict)  # principal → account name
    creds: dict[str, tuple[str, str]] = field(default_factory=dict)  # principal → (name, secret)
    teams: dict[str, str] = field(default_factory=dict)  # principal → team name
    robot_short: str = ""
    _api_tokens: dict[str, str | None] = field(default_factory=dict)
    _web_cookies: dict[str, httpx.Cookies] = field(default_factory=dict)

    # -- requests ---------------------------------------------------------------------------------------------

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30)

    def v2(self, principal: str, method: str, path: str, scope: str | None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        with self.client() as client:
            if principal != ANON and scope is not None:
                token = client.get("/v2/token", params={"scope": scope}, auth=self.creds[principal])
                if token.status_code != 200:
                    return token
                headers["Authorization"] = f"Bearer {token.json()['token']}"
            elif principal != ANON:
                return client.request(method, path, headers=headers, auth=self.creds[principal], **kwargs)
            return client.request(method, path, headers=headers, **kwargs)

    def api_token(self, principal: str) -> str | None:
        if principal not in self._api_tokens:
            name, secret = self.creds[principal]
            with self.client() as client:
                response = client.post("/api/v2/auth/token", json={"identifier": name, "secret": secret})
            self._api_tokens[principal] = response.json()["access_token"] if response.status_code == 200 else None
        return self._api_tokens[principal]

    def signed_out(self, principal: str) -> None:
        """Forget the principal's API token and web session: a password change or "revoke sessions" ended them."""
        self._api_tokens.pop(principal, None)
        self._web_cookies.pop(principal, None)

    def api(self, principal: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        auth = None
        if principal != ANON:
            token = self.api_token(principal)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            else:
                auth = self.creds[principal]
        with self.client() as client:
            return client.request(method, path, headers=headers, auth=auth, **kwargs)

    def web_cookies(self, principal: str, *, fresh: bool = False) -> httpx.Cookies:
        """A browser's cookies for the principal: signed in through the web hub's login form with its credentials
        (robots, tokens and dead accounts cannot sign in there, so they browse as anonymous visitors)."""
        if fresh or principal not in self._web_cookies:
            with self.client() as client:
                token = _csrf_token(client.get("/login").text)
                if principal != ANON:
                    name, secret = self.creds[principal]
                    client.post("/login", data={"username": name, "password": secret, "csrf_token": token})
                cookies = httpx.Cookies(client.cookies)
            if fresh:
                return cookies
            self._web_cookies[principal] = cookies
        return self._web_cookies[principal]

    def web(self, principal: str, method: str, path: str, *, form: dict[str, str] | None = None) -> httpx.Response:
        """A page or form as the principal's browser: POSTs carry the form's CSRF token (taken from ``path``'s
        page when it has one, else from the login page), as a browser posting the form would."""
        fresh = path == "/logout"  # signing out ends the session: use one of its own
        cookies = self.web_cookies(principal, fresh=fresh)
        with httpx.Client(base_url=self.server.url, timeout=30, cookies=cookies) as client:
            if method == "GET":
                return client.get(path)
            data = dict(form or {})
            page = client.get("/login")
            data["csrf_token"] = _csrf_token((client.get("/") if page.status_code == 303 else page).text)
            return client.request(method, path, data=data)

    # -- fixtures for destructive rows ------------------------------------------------------------------------

    def admin_v2(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.url, timeout=30, auth=("admin", self.server.ADMIN_PASSWORD))

    def fresh_image(self, tag: str | None = None) -> tuple[str, str]:
        """Push a new image into the private repository; returns (tag, manifest digest)."""
        tag = tag or f"t{uuid.uuid4().hex[:10]}"
        with self.admin_v2() as client:
            image = push_image(client, self.repo, tag)
        return tag, image.digest

    def fresh_blob(self) -> str:
        with self.admin_v2() as client:
            image = push_image(client, self.repo, None)
        return "sha256:" + hashlib.sha256(image.layers[0]).hexdigest()

    def fresh_upload(self) -> str:
        with self.admin_v2() as client:
            response = client.post(f"/v2/{self.repo}/blobs/uploads/")
        assert response.status_code == 202, response.text
        return str(response.headers["docker-upload-uuid"])

    def admin_api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.hub.client.request(method, path, **kwargs)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json() if response.content else None


def _csrf_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, html[:300]
    return found.group(1)


def build_world(server: Server) -> World:
    hub = HubAdmin(server)
    world = World(server, hub)
    owner, owner_pw = hub.user("owner")
    world.org = hub.org(owner)
    stranger, stranger_pw = hub.user("stranger")
    world.other_org = hub.org(stranger)
    world.repo = f"{world.org}/app"
    world.public_repo = f"{world.org}/pub"
    with world.admin_v2() as client:
        image = push_image(client, world.repo, "latest")
        push_image(client, world.public_repo, "latest")
        push_image(client, f"{owner}/mine", "latest")  # a user-namespace repository, for collaborators
    world.digest = image.digest
    world.blob = "sha256:" + hashlib.sha256(image.layers[0]).hexdigest()
    world.manifest = image.manifest
    hub.set_visibility(world.public_repo, private=False)
    world.users[OWNER], world.creds[OWNER] = owner, (owner, owner_pw)
    world.users[STRANGER], world.creds[STRANGER] = stranger, (stranger, stranger_pw)
    for principal, permission in ((READER, "read"), (WRITER, "write"), (TEAM_ADMIN, "admin")):
        name, password = hub.user(permission)
        world.users[principal], world.creds[principal] = name, (name, password)
        world.teams[principal] = hub.team(world.org, [name], {"app": permission})
    disabled, disabled_pw = hub.user("gone")
    hub.team(world.org, [disabled], {"app": "write"})
    world.users[DISABLED], world.creds[DISABLED] = disabled, (disabled, disabled_pw)
    world.admin_api("PATCH", f"/api/v2/users/{disabled}", json={"is_active": False})
    robot = hub.robot(world.org, {world.repo: "read"})
    world.robot_short = robot.name.split("+", 1)[1]
    world.creds[ROBOT] = (robot.name, robot.secret)
    world.users[ROBOT] = robot.name
    resources = [{"type": "TYPE_REPO", "path": world.repo, "scopes": ["repo-pull"]}]
    org_token = world.admin_api(
        "POST", f"/api/v2/orgs/{world.org}/access-tokens", json={"label": "matrix", "resources": resources}
    )
    world.creds[OAT] = (world.org, org_token["token"])
    world.users[OAT] = world.org
    read_token = pat(server, owner, owner_pw, "repo:read")["token"]
    world.creds[PAT_READ] = (owner, read_token)
    expiring = pat(server, owner, owner_pw, "repo:admin")
    server.execute_sql("UPDATE access_tokens SET expires_at = created_at WHERE id = :id", id=expiring["uuid"])
    world.creds[PAT_EXPIRED] = (owner, expiring["token"])
    revoked = pat(server, owner, owner_pw, "repo:admin")
    with httpx.Client(base_url=server.url, timeout=30, auth=(owner, owner_pw)) as client:
        assert client.patch(f"/api/v2/access-tokens/{revoked['uuid']}", json={"is_active": False}).status_code == 200
    world.creds[PAT_REVOKED] = (owner, revoked["token"])
    for principal in (PAT_READ, PAT_EXPIRED, PAT_REVOKED):
        world.users[principal] = owner
    return world
