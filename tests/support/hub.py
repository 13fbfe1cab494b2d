"""Set up accounts on a secure test server through the Hub API, as its administrator would."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.support.checks import unique
from tests.support.server import Server


@dataclass
class Robot:
    name: str
    secret: str


class HubAdmin:
    """The administrator's API client: users, organizations, teams, robots and tokens for tests."""

    def __init__(self, server: Server) -> None:
        self.server = server
        token = httpx.post(
            f"{server.url}/api/v2/auth/token",
            json={"identifier": "admin", "secret": server.ADMIN_PASSWORD},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        # An API token: Basic auth would pay argon2 on every request.
        self.client = httpx.Client(
            base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {token.json()['access_token']}"}
        )

    def close(self) -> None:
        self.client.close()

    def _ok(self, response: httpx.Response, *statuses: int) -> Any:
        assert response.status_code in (statuses or (200, 201, 204)), (response.status_code, response.text)
        return response.json() if response.content else None

    def user(self, prefix: str = "u", password: str | None = None) -> tuple[str, str]:
        name, password = unique(prefix), password or f"pw-{uuid.uuid4().hex}"
        self._ok(
            self.client.post(
                "/api/v2/users", json={"username": name, "email": f"{name}@example.test", "password": password}
            ),
            201,
        )
        return name, password

    def org(self, owner: str, prefix: str = "org") -> str:
        name = unique(prefix)
        self._ok(self.client.post("/api/v2/orgs", json={"orgname": name, "owner": owner}), 201)
        return name

    def team(self, org: str, members: list[str], grants: dict[str, str]) -> str:
        team = unique("team")
        self._ok(self.client.post(f"/api/v2/orgs/{org}/groups", json={"name": team}), 201)
        for member in members:
            self._ok(self.client.post(f"/api/v2/orgs/{org}/groups/{team}/members", json={"member": member}), 200, 201)
        for repo, permission in grants.items():
            self._ok(
                self.client.put(
                    f"/api/v2/orgs/{org}/groups/{team}/repositories/{repo}", json={"permission": permission}
                )
            )
        return team

    def robot(self, org: str, grants: dict[str, str]) -> Robot:
        short = "bot" + uuid.uuid4().hex[:8]
        body = self._ok(
            self.client.post(
                f"/api/v2/orgs/{org}/robots",
                json={"name": short, "permissions": [{"repository": r, "permission": p} for r, p in grants.items()]},
            ),
            201,
        )
        return Robot(body["name"], body["secret"])

    def set_visibility(self, repo: str, *, private: bool) -> None:
        namespace, _, name = repo.partition("/")
        self._ok(self.client.patch(f"/api/v2/namespaces/{namespace}/repositories/{name}", json={"is_private": private}))


def pat(server: Server, user: str, password: str, *scopes: str, **extra: Any) -> dict[str, Any]:
    """Create a personal access token as ``user``; returns the API's answer (with the secret in ``token``)."""
    with httpx.Client(base_url=server.url, timeout=30, auth=(user, password)) as client:
        response = client.post(
            "/api/v2/access-tokens",
            json={"token_label": f"test {uuid.uuid4().hex[:6]}", "scopes": list(scopes), **extra},
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body
