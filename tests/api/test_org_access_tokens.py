"""Organization access tokens (Docker Hub's OATs) through the Hub API: made and managed by owners only, one-time
secrets with their own prefix, restricted to their repositories and actions on ``/v2/token`` and on the API (the
organization's name is the user name), switched off, expired and deleted tokens refused, last use recorded, every
change in the organization's audit log, and the token's robot kept out of the robots' API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.checks import problem, unique
from tests.support.hub_accounts import Accounts, grant_actions, is_rfc3339_utc, ok
from tests.support.oci import push_image

TOKEN_FIELDS = {"id", "label", "description", "created_by", "is_active", "created_at", "expires_at", "last_used_at"}


def _resources(org: str) -> list[dict[str, Any]]:
    return [
        {"type": "TYPE_REPO", "path": f"{org}/app", "scopes": ["repo-pull"]},
        {"type": "TYPE_REPO", "path": f"{org}/ci", "scopes": ["repo-pull", "repo-push"]},
    ]


def _org_with_repos(hub: Accounts) -> tuple[str, str, str]:
    owner, member = hub.user("owner"), hub.user("member")
    org = hub.org(owner, member)
    for repo in ("app", "ci", "secret"):
        push_image(hub.admin, f"{org}/{repo}", "v1")
    return owner, member, org


def test_owners_make_list_change_and_delete_tokens(hub: Accounts) -> None:
    owner, member, org = _org_with_repos(hub)
    path = f"/api/v2/orgs/{org}/access-tokens"
    body = {"label": "CI", "description": "pipeline", "resources": _resources(org)}
    problem(hub.as_user(member).post(path, json=body), 403)
    problem(hub.anon.post(path, json=body), 401)
    made = ok(hub.as_user(owner).post(path, json=body), 201)
    assert set(made) == TOKEN_FIELDS | {"resources", "token"}
    assert made["token"].startswith("dy_oat_")
    assert (made["label"], made["description"], made["created_by"], made["is_active"]) == (
        "CI",
        "pipeline",
        owner,
        True,
    )
    assert made["resources"] == _resources(org)
    assert (made["expires_at"], made["last_used_at"]) == (None, None)
    assert is_rfc3339_utc(made["created_at"])
    listed = ok(hub.as_user(owner).get(path))
    assert set(listed) == {"total", "next", "previous", "results"}
    assert listed["total"] == 1
    assert listed["results"] == [{k: made[k] for k in TOKEN_FIELDS}]
    problem(hub.as_user(member).get(path), 403)
    got = ok(hub.as_user(owner).get(f"{path}/{made['id']}"))
    assert got == {k: v for k, v in made.items() if k != "token"}
    changed = ok(
        hub.as_user(owner).patch(
            f"{path}/{made['id']}",
            json={"label": "CI 2", "resources": [{"type": "TYPE_REPO", "path": f"{org}/app", "scopes": ["repo-push"]}]},
        )
    )
    assert changed["label"] == "CI 2"
    assert changed["resources"] == [{"type": "TYPE_REPO", "path": f"{org}/app", "scopes": ["repo-push"]}]
    assert grant_actions(hub.anon, f"{org}/app", (org, made["token"])) == ["pull", "push"]
    assert grant_actions(hub.anon, f"{org}/ci", (org, made["token"])) == []
    problem(hub.as_user(member).patch(f"{path}/{made['id']}", json={"label": "x"}), 403)
    problem(hub.as_user(owner).get(f"{path}/nosuchtoken"), 404)
    # The token's robot is not one of the organization's robots.
    assert ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/robots"))["count"] == 0
    problem(hub.as_user(member).delete(f"{path}/{made['id']}"), 403)
    assert hub.as_user(owner).delete(f"{path}/{made['id']}").status_code == 204
    problem(hub.as_user(owner).get(f"{path}/{made['id']}"), 404)
    assert grant_actions(hub.anon, f"{org}/app", None) == []
    assert (
        hub.anon.get("/v2/token", params={"scope": f"repository:{org}/app:pull"}, auth=(org, made["token"])).status_code
        == 401
    )
    actions = [e["action"] for e in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert actions[:3] == ["access_token.delete", "access_token.update", "access_token.create"]


def test_a_token_reaches_only_its_repositories(hub: Accounts) -> None:
    owner, _, org = _org_with_repos(hub)
    made = ok(
        hub.as_user(owner).post(
            f"/api/v2/orgs/{org}/access-tokens", json={"label": "ci", "resources": _resources(org)}
        ),
        201,
    )
    secret = made["token"]
    assert grant_actions(hub.anon, f"{org}/app", (org, secret)) == ["pull"]
    assert grant_actions(hub.anon, f"{org}/ci", (org, secret)) == ["pull", "push"]
    assert grant_actions(hub.anon, f"{org}/secret", (org, secret)) == []
    # The organization's name is the user name: nobody else's.
    assert (
        hub.anon.get("/v2/token", params={"scope": f"repository:{org}/app:pull"}, auth=(owner, secret)).status_code
        == 401
    )
    # On the API: an access token from /auth/token with the organization's name.
    api = ok(hub.anon.post("/api/v2/auth/token", json={"identifier": org, "secret": secret}))["access_token"]
    as_token = hub.client(bearer=api)
    ok(as_token.get(f"/api/v2/namespaces/{org}/repositories/app/tags"))
    problem(as_token.get(f"/api/v2/namespaces/{org}/repositories/secret/tags"), 404)
    problem(as_token.delete(f"/api/v2/namespaces/{org}/repositories/ci/tags/v1"), 403)
    problem(as_token.get(f"/api/v2/orgs/{org}/access-tokens"), 403)  # tokens do not manage tokens
    used = ok(hub.as_user(owner).get(f"/api/v2/orgs/{org}/access-tokens/{made['id']}"))
    assert is_rfc3339_utc(used["last_used_at"])
    # Switched off: refused at once, API token included; switched on again: back.
    ok(hub.as_user(owner).patch(f"/api/v2/orgs/{org}/access-tokens/{made['id']}", json={"is_active": False}))
    assert grant_actions(hub.anon, f"{org}/app", None) == []
    problem(hub.anon.post("/api/v2/auth/token", json={"identifier": org, "secret": secret}), 401)
    problem(as_token.get(f"/api/v2/namespaces/{org}/repositories/app/tags"), 401)
    ok(hub.as_user(owner).patch(f"/api/v2/orgs/{org}/access-tokens/{made['id']}", json={"is_active": True}))
    assert grant_actions(hub.anon, f"{org}/app", (org, secret)) == ["pull"]


def test_tokens_expire(hub: Accounts) -> None:
    owner, _, org = _org_with_repos(hub)
    path = f"/api/v2/orgs/{org}/access-tokens"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    problem(hub.as_user(owner).post(path, json={"label": "old", "expires_at": past}), 400)
    # Far enough ahead that a loaded machine still uses the token once before it expires.
    soon = datetime.now(UTC) + timedelta(seconds=6)
    body = {"label": "short", "resources": _resources(org), "expires_at": soon.isoformat()}
    made = ok(hub.as_user(owner).post(path, json=body), 201)
    assert is_rfc3339_utc(made["expires_at"])
    assert grant_actions(hub.anon, f"{org}/app", (org, made["token"])) == ["pull"]
    time.sleep(max(0.0, (soon - datetime.now(UTC)).total_seconds()) + 0.5)
    status = hub.anon.get("/v2/token", params={"scope": f"repository:{org}/app:pull"}, auth=(org, made["token"]))
    assert status.status_code == 401


def test_resources_are_checked(hub: Accounts) -> None:
    owner, _, org = _org_with_repos(hub)
    other = hub.org(owner)
    path = f"/api/v2/orgs/{org}/access-tokens"
    for resources, status in (
        ([{"type": "TYPE_REPO", "path": f"{other}/app", "scopes": ["repo-pull"]}], 400),  # another namespace
        ([{"type": "TYPE_REPO", "path": f"{org}/app", "scopes": ["repo-admin"]}], 400),
        ([{"type": "TYPE_ORG", "path": org, "scopes": ["member-read"]}], 400),
        ([{"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["repo-push"]}], 400),
        ([{"type": "TYPE_REPO", "path": f"{org}/app", "scopes": []}], 422),
        ([{"type": "TYPE_OTHER", "path": f"{org}/app", "scopes": ["repo-pull"]}], 422),
    ):
        problem(hub.as_user(owner).post(path, json={"label": unique("l"), "resources": resources}), status)
    problem(hub.as_user(owner).post(path, json={"label": ""}), 422)
    public = [{"type": "TYPE_REPO", "path": "*/*/public", "scopes": ["repo-pull"]}]
    made = ok(hub.as_user(owner).post(path, json={"label": "public", "resources": public}), 201)
    assert made["resources"] == public
    assert grant_actions(hub.anon, f"{org}/app", (org, made["token"])) == []
