"""Refresh and API tokens end with the credential they came from: a password change (through the API or
``dockyard user set-password``), a robot secret regeneration and ``revoke-sessions`` (API and CLI) refuse every
refresh and API token issued before. Refresh tokens are stored by id, so each can be revoked; with
``refresh_token_rotation`` on, a refresh grant rotates the token and reusing a rotated one revokes its family.

Everything goes through the HTTP surface of a live server (the CLI commands run as the operator would, on the
server's data directory and database)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.cli import dockyard_cli
from tests.support.hub import HubAdmin, pat
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.server import Server

CLIENT_ID = "docker"


@pytest.fixture(scope="module")
def rotating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    srv = AppServer(
        tmp_path_factory.mktemp("rotation") / "data",
        secure=True,
        env={**SIGN_IN_OFTEN, "DOCKYARD_REFRESH_TOKEN_ROTATION": "true"},
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hub(secure_server: AppServer) -> Iterator[HubAdmin]:
    admin = HubAdmin(secure_server)
    yield admin
    admin.close()


@pytest.fixture
def anon(secure_server: AppServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secure_server.url, timeout=30) as client:
        yield client


def offline_token(client: httpx.Client, name: str, secret: str) -> str:
    """What ``docker login`` stores: the refresh token of ``GET /v2/token?offline_token=true&client_id=docker``."""
    response = client.get(
        "/v2/token", params={"offline_token": "true", "client_id": CLIENT_ID, "scope": ""}, auth=(name, secret)
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


def refresh(client: httpx.Client, token: str, scope: str = "repository:x/y:pull") -> httpx.Response:
    return client.post(
        "/v2/token",
        data={"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT_ID, "scope": scope},
    )


def api_token(client: httpx.Client, name: str, secret: str) -> str:
    response = client.post("/api/v2/auth/token", json={"identifier": name, "secret": secret})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def whoami(client: httpx.Client, token: str) -> int:
    return client.get("/api/v2/user", headers={"Authorization": f"Bearer {token}"}).status_code


def refused_grant(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 401, response.text
    body: dict[str, Any] = response.json()
    assert body["error"] == "invalid_grant"
    assert body["errors"][0]["code"] == "UNAUTHORIZED"
    return body


def cli(server: Server, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``dockyard …`` as the operator runs it on the server's host (same data directory and database)."""
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(server.data_dir), **server.env}
    done = dockyard_cli(*args, env=env, input=stdin)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


# -- (a) password changes ------------------------------------------------------------------------------------


def test_refresh_token_refused_after_a_password_change_through_the_api(hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("pwapi")
    token = offline_token(anon, name, password)
    assert refresh(anon, token).status_code == 200
    changed = anon.put(
        f"/api/v2/users/{name}/password",
        json={"current_password": password, "new_password": "a-new-password-1"},
        auth=(name, password),
    )
    assert changed.status_code == 204, changed.text
    refused_grant(refresh(anon, token))
    # The new password gets a working refresh token again.
    assert refresh(anon, offline_token(anon, name, "a-new-password-1")).status_code == 200


def test_refresh_token_refused_after_an_administrator_resets_the_password(hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("pwadm")
    token = offline_token(anon, name, password)
    assert hub.client.put(f"/api/v2/users/{name}/password", json={"new_password": "reset-password-1"}).status_code
    refused_grant(refresh(anon, token))


def test_refresh_token_refused_after_dockyard_user_set_password(
    secure_server: AppServer, hub: HubAdmin, anon: httpx.Client
) -> None:
    name, password = hub.user("pwcli")
    token = offline_token(anon, name, password)
    cli(secure_server, "user", "set-password", name, "--password-stdin", stdin="cli-password-12\n")
    refused_grant(refresh(anon, token))
    assert refresh(anon, offline_token(anon, name, "cli-password-12")).status_code == 200


def test_oauth2_password_grant_refresh_token_refused_after_a_password_change(hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("pwform")
    form = {"grant_type": "password", "username": name, "password": password, "client_id": CLIENT_ID}
    issued = anon.post("/v2/token", data={**form, "access_type": "offline"})
    assert issued.status_code == 200, issued.text
    token = issued.json()["refresh_token"]
    assert hub.client.put(f"/api/v2/users/{name}/password", json={"new_password": "reset-password-2"}).status_code
    refused_grant(refresh(anon, token))


# -- (b) robots ----------------------------------------------------------------------------------------------


def test_robot_refresh_token_refused_after_regenerate_secret(hub: HubAdmin, anon: httpx.Client) -> None:
    owner, _ = hub.user("rbtown")
    org = hub.org(owner)
    robot = hub.robot(org, {f"{org}/app": "read"})
    token = offline_token(anon, robot.name, robot.secret)
    assert refresh(anon, token, f"repository:{org}/app:pull").status_code == 200
    short = robot.name.split("+", 1)[1]
    regenerated = hub.client.post(f"/api/v2/orgs/{org}/robots/{short}/secret")
    assert regenerated.status_code == 200, regenerated.text
    refused_grant(refresh(anon, token, f"repository:{org}/app:pull"))
    fresh = offline_token(anon, robot.name, regenerated.json()["secret"])
    assert refresh(anon, fresh, f"repository:{org}/app:pull").status_code == 200


# -- (c) API tokens ------------------------------------------------------------------------------------------


def test_api_token_refused_after_a_password_change(hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("apipw")
    token = api_token(anon, name, password)
    assert whoami(anon, token) == 200
    assert hub.client.put(f"/api/v2/users/{name}/password", json={"new_password": "reset-password-3"}).status_code
    assert whoami(anon, token) == 401
    assert whoami(anon, api_token(anon, name, "reset-password-3")) == 200


def test_api_token_refused_after_dockyard_user_set_password(
    secure_server: AppServer, hub: HubAdmin, anon: httpx.Client
) -> None:
    name, password = hub.user("apicli")
    token = api_token(anon, name, password)
    cli(secure_server, "user", "set-password", name, "--password-stdin", stdin="cli-password-34\n")
    assert whoami(anon, token) == 401


def test_revoke_sessions_ends_api_and_refresh_tokens(hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("revoke")
    api = api_token(anon, name, password)
    refresh_token = offline_token(anon, name, password)
    revoked = anon.post(f"/api/v2/users/{name}/revoke-sessions", headers={"Authorization": f"Bearer {api}"})
    assert revoked.status_code == 204, revoked.text
    assert revoked.content == b""
    assert whoami(anon, api) == 401
    refused_grant(refresh(anon, refresh_token))
    # The password itself still works: a new sign-in starts new sessions.
    assert whoami(anon, api_token(anon, name, password)) == 200
    assert refresh(anon, offline_token(anon, name, password)).status_code == 200
    log = hub.client.get(f"/api/v2/auditlogs/{name}", params={"action": "user.revoke_sessions"})
    assert log.status_code == 200, log.text
    assert [entry["action"] for entry in log.json()["logs"]] == ["user.revoke_sessions"]


def test_dockyard_user_revoke_sessions(secure_server: AppServer, hub: HubAdmin, anon: httpx.Client) -> None:
    name, password = hub.user("revcli")
    api = api_token(anon, name, password)
    refresh_token = offline_token(anon, name, password)
    cli(secure_server, "user", "revoke-sessions", name)
    assert whoami(anon, api) == 401
    refused_grant(refresh(anon, refresh_token))


def test_tokens_from_a_personal_access_token(secure_server: AppServer, hub: HubAdmin, anon: httpx.Client) -> None:
    """A PAT survives a password change, and so does an API token got with it; the account's refresh tokens
    (whatever they were got with) do not."""
    name, password = hub.user("patuser")
    secret = pat(secure_server, name, password, "repo:read")["token"]
    from_pat = api_token(anon, name, secret)
    refresh_from_pat = offline_token(anon, name, secret)
    assert hub.client.put(f"/api/v2/users/{name}/password", json={"new_password": "reset-password-5"}).status_code
    assert whoami(anon, from_pat) == 200
    assert whoami(anon, api_token(anon, name, secret)) == 200
    refused_grant(refresh(anon, refresh_from_pat))


def test_revoke_sessions_permissions(hub: HubAdmin, anon: httpx.Client, secure_server: AppServer) -> None:
    name, password = hub.user("revperm")
    other, other_pw = hub.user("revother")
    path = f"/api/v2/users/{name}/revoke-sessions"
    assert anon.post(path).status_code == 401
    assert anon.post(path, auth=(other, other_pw)).status_code == 403
    admin_pat = pat(secure_server, name, password, "repo:admin")["token"]
    assert anon.post(path, headers={"Authorization": f"Bearer {admin_pat}"}).status_code == 403
    assert hub.client.post("/api/v2/users/nosuchuser1/revoke-sessions").status_code == 404
    assert hub.client.post(path).status_code == 204
    assert anon.post(path, auth=(name, password)).status_code == 204


# -- (d) rotation --------------------------------------------------------------------------------------------


def test_refresh_token_is_kept_by_default(anon: httpx.Client, hub: HubAdmin) -> None:
    """Docker's daemon and containers/image never store the refresh token a refresh grant returns: they present
    the one ``docker login`` stored, again and again. Without rotation that keeps working."""
    name, password = hub.user("keep")
    token = offline_token(anon, name, password)
    for _ in range(3):
        response = refresh(anon, token)
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] == token


def test_rotation_issues_a_new_refresh_token_and_reuse_revokes_the_family(rotating: Server) -> None:
    admin = HubAdmin(rotating)
    try:
        name, password = admin.user("rotate")
    finally:
        admin.close()
    with httpx.Client(base_url=rotating.url, timeout=30) as client:
        first = offline_token(client, name, password)
        answer = refresh(client, first)
        assert answer.status_code == 200, answer.text
        second = answer.json()["refresh_token"]
        assert second != first
        # The old one stops working once the new one is issued; presenting it again revokes the family.
        refused_grant(refresh(client, first))
        refused_grant(refresh(client, second))
        refused_grant(refresh(client, first))
        # A fresh login starts a new family.
        third = offline_token(client, name, password)
        answer = refresh(client, third)
        assert answer.status_code == 200, answer.text
        fourth = answer.json()["refresh_token"]
        assert refresh(client, fourth).status_code == 200


def test_rotation_chain_keeps_working(rotating: Server) -> None:
    admin = HubAdmin(rotating)
    try:
        name, password = admin.user("chain")
    finally:
        admin.close()
    with httpx.Client(base_url=rotating.url, timeout=30) as client:
        token = offline_token(client, name, password)
        for _ in range(3):
            answer = refresh(client, token)
            assert answer.status_code == 200, answer.text
            token = answer.json()["refresh_token"]
