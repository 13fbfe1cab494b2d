"""Helpers for Hub API account tests against a running secure server: users and organizations made through the
API, clients signed in as them (Basic, API bearer token or personal access token), registry grants from
``/v2/token``, and the response shapes to assert."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tests.support.checks import unique
from tests.support.server import Server

ADMIN = ("admin", Server.ADMIN_PASSWORD)
PASSWORD = "a-password-for-tests"
USER_PUBLIC = {
    "id",
    "username",
    "full_name",
    "location",
    "company",
    "profile_url",
    "date_joined",
    "gravatar_url",
    "type",
}
USER_PRIVATE = USER_PUBLIC | {"email", "is_admin", "is_active"}
TOKEN_FIELDS = {
    "uuid",
    "client_id",
    "creator_ip",
    "creator_ua",
    "created_at",
    "last_used",
    "generated_by",
    "is_active",
    "token_label",
    "scopes",
    "expires_at",
    "repositories",
}
ORG_FIELDS = {
    "id",
    "orgname",
    "full_name",
    "company",
    "location",
    "profile_url",
    "description",
    "date_joined",
    "gravatar_url",
    "type",
    "default_private",
}
# Settings for a server tests sign in to a lot (``tests/support/fixtures.py``): no credential caching (a changed
# password or a revoked token counts at once) and no lock-outs.
SIGN_IN_OFTEN = {
    "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
    "DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": "1000000",
    "DOCKYARD_LOGIN_MAX_FAILURES_PER_USER": "1000000",
}
ROBOT_FIELDS = {"name", "shortname", "org", "description", "is_active", "created_at", "expires_at", "permissions"}
PAGE_FIELDS = {"count", "next", "previous", "results"}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    return response.json() if response.content else None


def is_rfc3339_utc(value: Any) -> bool:
    return isinstance(value, str) and value.endswith("Z") and "T" in value


def grant_actions(client: httpx.Client, repository: str, auth: tuple[str, str] | None) -> list[str]:
    """The actions ``/v2/token`` grants ``auth`` on ``repository`` (asking for pull, push and delete)."""
    response = client.get("/v2/token", params={"scope": f"repository:{repository}:pull,push,delete"}, auth=auth)
    assert response.status_code == 200, response.text
    payload = response.json()["token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    access = claims["access"]
    return sorted(access[0]["actions"]) if access else []


def token_status(client: httpx.Client, auth: tuple[str, str]) -> int:
    """The status of ``GET /v2/token`` with Basic ``auth``."""
    return client.get("/v2/token", params={"scope": "repository:x/y:pull"}, auth=auth).status_code


class Accounts:
    """Account set-up through the API as the administrator, and clients for each account."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._clients: list[httpx.Client] = []
        self.passwords = {ADMIN[0]: ADMIN[1]}
        self.admin = self.client(auth=ADMIN)
        self.anon = self.client()

    def client(self, *, auth: tuple[str, str] | None = None, bearer: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
        client = httpx.Client(base_url=self.server.url, timeout=30, auth=auth, headers=headers)
        self._clients.append(client)
        return client

    def close(self) -> None:
        for client in self._clients:
            client.close()

    def user(self, prefix: str = "user", **extra: Any) -> str:
        name = unique(prefix)
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD, **extra}
        ok(self.admin.post("/api/v2/users", json=body), 201)
        return name

    def as_user(self, name: str, password: str | None = None) -> httpx.Client:
        return self.client(auth=(name, password or self.passwords.get(name, PASSWORD)))

    def api_token(self, name: str, secret: str | None = None) -> str:
        secret = secret or self.passwords.get(name, PASSWORD)
        response = self.anon.post("/api/v2/auth/token", json={"identifier": name, "secret": secret})
        token: str = ok(response)["access_token"]
        return token

    def pat(self, name: str, *scopes: str, **extra: Any) -> dict[str, Any]:
        body = {"token_label": unique("label"), "scopes": list(scopes), **extra}
        created: dict[str, Any] = ok(self.as_user(name).post("/api/v2/access-tokens", json=body), 201)
        return created

    def org(self, owner: str, *members: str) -> str:
        name = unique("org")
        ok(self.as_user(owner).post("/api/v2/orgs", json={"orgname": name}), 201)
        for member in members:
            ok(self.as_user(owner).post(f"/api/v2/orgs/{name}/members", json={"member": member}), 201)
        return name


@contextmanager
def accounts(server: Server) -> Iterator[Accounts]:
    made = Accounts(server)
    try:
        yield made
    finally:
        made.close()
