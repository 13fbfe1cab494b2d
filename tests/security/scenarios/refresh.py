"""Scenario rows: refresh tokens (``docker login``'s offline token) and API tokens after the credential behind
them changed — a password change, a robot secret regeneration, "revoke sessions". Each principal here is a fresh
account made for the call (the world's own accounts keep their credentials); ``user_*`` principals signed in with
their password, ``pat_*`` ones with a personal access token."""

from __future__ import annotations

import httpx

from tests.security.rows_oci import Call, Expect
from tests.security.world import World
from tests.support.hub import pat

CLIENT_ID = "docker"
NEW_PASSWORD = "changed-password-123"


def _offline(client: httpx.Client, name: str, secret: str) -> str:
    response = client.get("/v2/token", params={"offline_token": "true", "client_id": CLIENT_ID}, auth=(name, secret))
    assert response.status_code == 200, response.text
    token: str = response.json()["refresh_token"]
    return token


def _refresh(client: httpx.Client, token: str, scope: str = "") -> httpx.Response:
    form = {"grant_type": "refresh_token", "refresh_token": token, "client_id": CLIENT_ID, "scope": scope}
    return client.post("/v2/token", data=form)


def _api_token(client: httpx.Client, name: str, secret: str) -> str:
    response = client.post("/api/v2/auth/token", json={"identifier": name, "secret": secret})
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _change_password(world: World, name: str, password: str, how: str) -> None:
    """``how``: "self" (the user, giving the current password), "admin" (a site administrator's reset) or
    "revoke" (no change: "revoke sessions" by the user)."""
    with world.client() as client:
        if how == "self":
            body = {"current_password": password, "new_password": NEW_PASSWORD}
            response = client.put(f"/api/v2/users/{name}/password", json=body, auth=(name, password))
        elif how == "admin":
            response = world.hub.client.put(f"/api/v2/users/{name}/password", json={"new_password": NEW_PASSWORD})
        else:
            response = client.post(f"/api/v2/users/{name}/revoke-sessions", auth=(name, password))
    assert response.status_code == 204, response.text


def refresh_after(how: str) -> Call:
    """The refresh grant of a token got before ``how`` happened to the account (or to another account, for the
    ``bystander`` principal)."""

    def call(world: World, principal: str, _name: str) -> httpx.Response:
        name, password = world.hub.user("refresh")
        with world.client() as client:
            secret = (
                pat(world.server, name, password, "repo:read")["token"] if principal.startswith("pat_") else password
            )
            token = _offline(client, name, secret)
            if principal == "bystander":
                other, other_password = world.hub.user("other")
                _change_password(world, other, other_password, how)
            else:
                _change_password(world, name, password, how)
            return _refresh(client, token)

    return call


def robot_refresh_after_regeneration(world: World, principal: str, _name: str) -> httpx.Response:
    owner, _ = world.hub.user("robotowner")
    org = world.hub.org(owner)
    robot = world.hub.robot(org, {f"{org}/app": "read"})
    with world.client() as client:
        token = _offline(client, robot.name, robot.secret)
        if principal == "robot":
            short = robot.name.split("+", 1)[1]
            regenerated = world.hub.client.post(f"/api/v2/orgs/{org}/robots/{short}/secret")
            assert regenerated.status_code == 200, regenerated.text
        return _refresh(client, token, f"repository:{org}/app:pull")


def api_token_after(how: str) -> Call:
    def call(world: World, principal: str, _name: str) -> httpx.Response:
        name, password = world.hub.user("apitoken")
        with world.client() as client:
            secret = (
                pat(world.server, name, password, "repo:read")["token"] if principal.startswith("pat_") else password
            )
            token = _api_token(client, name, secret)
            _change_password(world, name, password, how)
            return client.get("/api/v2/user/orgs", headers={"Authorization": f"Bearer {token}"})

    return call


REFRESH: Expect = {"user_password": 401, "pat_read": 401, "bystander": 200}
API: Expect = {"user_password": 401, "pat_read": 200}

ROWS: dict[str, tuple[Call, Expect]] = {
    "refresh grant after the password changed (by the user)": (refresh_after("self"), REFRESH),
    "refresh grant after an administrator reset the password": (refresh_after("admin"), REFRESH),
    "refresh grant after revoke-sessions": (refresh_after("revoke"), REFRESH),
    "refresh grant after the robot secret was regenerated": (
        robot_refresh_after_regeneration,
        {"robot": 401, "robot_untouched": 200},
    ),
    "API token after the password changed (by the user)": (api_token_after("self"), API),
    "API token after an administrator reset the password": (api_token_after("admin"), API),
    "API token after revoke-sessions": (api_token_after("revoke"), API),
}
