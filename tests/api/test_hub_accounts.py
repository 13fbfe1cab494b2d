"""Users and personal access tokens through the Hub API, on a server with authentication on: response shapes
(Docker Hub's), who may do what (self, another user, administrator, anonymous, access token), one-time token
secrets, revocation / expiry / disabling taking effect at once on the API and on ``/v2/token``, and validation
errors as problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.support.app_server import AppServer
from tests.support.checks import problem, unique
from tests.support.hub_accounts import (
    ADMIN,
    PAGE_FIELDS,
    PASSWORD,
    TOKEN_FIELDS,
    USER_PRIVATE,
    USER_PUBLIC,
    Accounts,
    is_rfc3339_utc,
    ok,
    token_status,
)

# Users


def test_created_user_and_profiles_have_docker_hubs_shape(hub: Accounts) -> None:
    name = unique("alice")
    created = ok(
        hub.admin.post("/api/v2/users", json={"username": name, "email": f"{name}@example.com", "password": PASSWORD}),
        201,
    )
    assert set(created) == USER_PRIVATE
    assert created["username"] == name
    assert created["email"] == f"{name}@example.com"
    assert created["type"] == "User"
    assert created["gravatar_url"] == ""
    assert created["is_admin"] is False
    assert created["is_active"] is True
    assert created["full_name"] == created["company"] == created["location"] == created["profile_url"] == ""
    assert isinstance(created["id"], int)
    assert is_rfc3339_utc(created["date_joined"])
    # The public profile hides the e-mail address and the flags; the user and the administrator see them.
    other = hub.user("bob")
    public = ok(hub.anon.get(f"/api/v2/users/{name}"))
    assert set(public) == USER_PUBLIC
    assert {k: created[k] for k in USER_PUBLIC} == public
    assert set(ok(hub.as_user(other).get(f"/api/v2/users/{name}"))) == USER_PUBLIC
    assert ok(hub.as_user(name).get(f"/api/v2/users/{name}")) == created
    assert ok(hub.admin.get(f"/api/v2/users/{name}")) == created
    assert ok(hub.as_user(name).get("/api/v2/user")) == created
    assert "password" not in str(created)
    assert "hash" not in str(created)


def test_current_user_needs_a_user(hub: Accounts) -> None:
    problem(hub.anon.get("/api/v2/user"), 401)
    problem(hub.anon.get("/api/v2/user/orgs"), 401)
    problem(hub.client(auth=("nobody-here", PASSWORD)).get("/api/v2/user"), 401)
    problem(hub.client(bearer="not-a-token").get("/api/v2/user"), 401)
    assert ok(hub.admin.get("/api/v2/user"))["is_admin"] is True


def test_only_administrators_create_and_list_users(hub: Accounts) -> None:
    user = hub.user()
    body = {"username": unique("eve"), "password": PASSWORD}
    problem(hub.anon.post("/api/v2/users", json=body), 401)
    problem(hub.as_user(user).post("/api/v2/users", json=body), 403)
    problem(hub.as_user(user).get("/api/v2/users"), 403)
    problem(hub.anon.get("/api/v2/users"), 401)
    # An administrator's access token is capped by its scopes: no user management with it.
    admin_pat = hub.pat(ADMIN[0], "repo:admin")["token"]
    problem(hub.client(auth=(ADMIN[0], admin_pat)).post("/api/v2/users", json=body), 403)
    made = ok(hub.admin.post("/api/v2/users", json={**body, "is_admin": True}), 201)
    assert made["is_admin"] is True
    assert made["email"] is None
    listed = ok(hub.admin.get("/api/v2/users", params={"page_size": 1}))
    assert set(listed) == PAGE_FIELDS
    assert listed["count"] >= 3
    assert len(listed["results"]) == 1
    assert set(listed["results"][0]) == USER_PRIVATE
    assert listed["previous"] is None
    assert "page=2" in listed["next"]
    assert listed["next"].startswith("http")
    second = ok(hub.admin.get(listed["next"]))
    assert second["previous"] is not None
    assert second["results"] != listed["results"]


def test_user_creation_is_validated(hub: Accounts) -> None:
    taken = hub.user()
    problem(hub.admin.post("/api/v2/users", json={"username": taken, "password": PASSWORD}), 409)
    for bad in (
        {"username": "Upper", "password": PASSWORD},
        {"username": "ab", "password": PASSWORD},
        {"username": unique("u"), "password": "short"},
        {"username": unique("u")},
        {},
    ):
        body = problem(hub.admin.post("/api/v2/users", json=bad), 422)
        assert body["errors"]
        assert all("loc" in err and "msg" in err for err in body["errors"])
    problem(hub.admin.post("/api/v2/users", json={"username": "library", "password": PASSWORD}), 400)
    problem(hub.admin.post("/api/v2/users", json={"username": unique("u"), "email": "nope", "password": PASSWORD}), 400)
    problem(hub.admin.post("/api/v2/users", content=b"{not json", headers={"content-type": "application/json"}), 422)
    problem(hub.anon.get("/api/v2/users/nosuchuser1"), 404)


def test_profile_changes_by_self_and_administrator_only(hub: Accounts) -> None:
    name, other = hub.user(), hub.user()
    change = {
        "full_name": "Alice Liddell",
        "company": "Wonderland",
        "location": "Oxford",
        "profile_url": "https://example.com/alice",
        "email": "alice@example.org",
    }
    updated = ok(hub.as_user(name).patch(f"/api/v2/users/{name}", json=change))
    assert set(updated) == USER_PRIVATE
    assert {k: updated[k] for k in change} == change
    assert ok(hub.anon.get(f"/api/v2/users/{name}"))["full_name"] == "Alice Liddell"
    problem(hub.as_user(other).patch(f"/api/v2/users/{name}", json={"full_name": "x"}), 403)
    problem(hub.anon.patch(f"/api/v2/users/{name}", json={"full_name": "x"}), 401)
    assert ok(hub.admin.patch(f"/api/v2/users/{name}", json={"company": ""}))["company"] == ""
    # Only administrators change the flags; access tokens do not change profiles.
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"is_active": False}), 403)
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"is_admin": True}), 403)
    token = hub.pat(name, "repo:admin")["token"]
    problem(hub.client(auth=(name, token)).patch(f"/api/v2/users/{name}", json={"full_name": "x"}), 403)
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"profile_url": "javascript:alert(1)"}), 400)
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"email": "no-at-sign"}), 400)
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"full_name": "x" * 256}), 422)
    problem(hub.as_user(name).patch(f"/api/v2/users/{name}", json={"full_name": "a\u0000b"}), 422)
    problem(hub.admin.patch("/api/v2/users/nosuchuser1", json={"full_name": "x"}), 404)
    # Granting site administration is not supported by the user service yet; an unchanged value is accepted.
    problem(hub.admin.patch(f"/api/v2/users/{name}", json={"is_admin": True}), 400)
    assert ok(hub.admin.patch(f"/api/v2/users/{name}", json={"is_admin": False}))["is_admin"] is False
    problem(hub.admin.patch(f"/api/v2/users/{ADMIN[0]}", json={"is_active": False}), 409)


def test_disabling_a_user_takes_effect_at_once(hub: Accounts) -> None:
    name = hub.user()
    bearer = hub.client(bearer=hub.api_token(name))
    pat = hub.pat(name, "repo:read")["token"]
    assert ok(bearer.get("/api/v2/user"))["username"] == name
    assert token_status(hub.anon, (name, pat)) == 200
    disabled = ok(hub.admin.patch(f"/api/v2/users/{name}", json={"is_active": False}))
    assert disabled["is_active"] is False
    problem(bearer.get("/api/v2/user"), 401)
    problem(hub.as_user(name).get("/api/v2/user"), 401)
    problem(hub.client(auth=(name, pat)).get("/api/v2/user"), 401)
    problem(hub.anon.post("/api/v2/auth/token", json={"identifier": name, "secret": PASSWORD}), 401)
    assert token_status(hub.anon, (name, PASSWORD)) == 401
    assert token_status(hub.anon, (name, pat)) == 401
    assert ok(hub.admin.patch(f"/api/v2/users/{name}", json={"is_active": True}))["is_active"] is True
    assert ok(bearer.get("/api/v2/user"))["username"] == name
    assert token_status(hub.anon, (name, pat)) == 200


def test_password_change(hub: Accounts) -> None:
    name, other = hub.user(), hub.user()
    path = f"/api/v2/users/{name}/password"
    new = "another-password-1"
    problem(hub.as_user(name).put(path, json={"new_password": new}), 400)
    problem(hub.as_user(name).put(path, json={"current_password": "wrong-password", "new_password": new}), 403)
    problem(hub.as_user(name).put(path, json={"current_password": PASSWORD, "new_password": "short"}), 422)
    problem(hub.as_user(other).put(path, json={"current_password": PASSWORD, "new_password": new}), 403)
    problem(hub.anon.put(path, json={"new_password": new}), 401)
    response = hub.as_user(name).put(path, json={"current_password": PASSWORD, "new_password": new})
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.as_user(name).get("/api/v2/user"), 401)
    assert ok(hub.as_user(name, new).get("/api/v2/user"))["username"] == name
    # Administrators reset it without the current one.
    assert hub.admin.put(path, json={"new_password": PASSWORD}).status_code == 204
    assert ok(hub.as_user(name).get("/api/v2/user"))["username"] == name


def test_deleting_users(hub: Accounts) -> None:
    name, other, owner = hub.user(), hub.user(), hub.user()
    problem(hub.as_user(other).delete(f"/api/v2/users/{name}"), 403)
    problem(hub.anon.delete(f"/api/v2/users/{name}"), 401)
    response = hub.as_user(name).delete(f"/api/v2/users/{name}")
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.anon.get(f"/api/v2/users/{name}"), 404)
    problem(hub.as_user(name).get("/api/v2/user"), 401)
    # The only owner of an organization stays until someone else owns it.
    org = hub.org(owner)
    body = problem(hub.admin.delete(f"/api/v2/users/{owner}"), 409)
    assert org in str(body["errors"])
    assert hub.admin.delete(f"/api/v2/orgs/{org}").status_code == 204
    assert hub.admin.delete(f"/api/v2/users/{owner}").status_code == 204
    problem(hub.admin.delete(f"/api/v2/users/{owner}"), 404)


# Personal access tokens


def test_token_creation_shows_the_secret_once(hub: Accounts) -> None:
    name = hub.user()
    expires = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = {"token_label": "ci", "scopes": ["repo:read", "repo:write"], "expires_at": expires.isoformat()}
    created = ok(hub.as_user(name).post("/api/v2/access-tokens", json=body), 201)
    assert set(created) == TOKEN_FIELDS | {"token"}
    assert created["token"].startswith("dy_pat_")
    assert len(created["token"]) > 30
    assert created["token_label"] == "ci"
    assert created["scopes"] == ["repo:write", "repo:read"]
    assert created["is_active"] is True
    assert created["client_id"]
    assert created["generated_by"] == "manual"
    assert created["creator_ip"] == "127.0.0.1"
    assert created["creator_ua"] == ""
    assert created["last_used"] is None
    assert created["repositories"] is None
    assert is_rfc3339_utc(created["created_at"])
    assert created["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    shown = ok(hub.as_user(name).get(f"/api/v2/access-tokens/{created['uuid']}"))
    assert set(shown) == TOKEN_FIELDS
    assert shown == {k: v for k, v in created.items() if k != "token"}
    listed = ok(hub.as_user(name).get("/api/v2/access-tokens"))
    assert set(listed) == PAGE_FIELDS
    assert listed["count"] == 1
    assert listed["results"] == [shown]
    assert created["token"] not in hub.as_user(name).get("/api/v2/access-tokens").text
    # The token works as a password, and then shows when it was used.
    assert ok(hub.client(bearer=created["token"]).get("/api/v2/user"))["username"] == name
    assert token_status(hub.anon, (name, created["token"])) == 200
    assert is_rfc3339_utc(ok(hub.as_user(name).get(f"/api/v2/access-tokens/{created['uuid']}"))["last_used"])


def test_tokens_are_managed_with_the_accounts_own_credentials(hub: Accounts) -> None:
    name, other = hub.user(), hub.user()
    token = hub.pat(name, "repo:admin", repositories=[f"{name}/app"])
    assert token["repositories"] == [f"{name}/app"]
    with_token = hub.client(auth=(name, token["token"]))
    problem(with_token.get("/api/v2/access-tokens"), 403)
    problem(with_token.post("/api/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"]}), 403)
    problem(with_token.delete(f"/api/v2/access-tokens/{token['uuid']}"), 403)
    problem(hub.anon.get("/api/v2/access-tokens"), 401)
    problem(hub.anon.post("/api/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"]}), 401)
    # Another user's token does not exist for them.
    problem(hub.as_user(other).get(f"/api/v2/access-tokens/{token['uuid']}"), 404)
    problem(hub.as_user(other).patch(f"/api/v2/access-tokens/{token['uuid']}", json={"is_active": False}), 404)
    problem(hub.as_user(other).delete(f"/api/v2/access-tokens/{token['uuid']}"), 404)
    assert ok(hub.as_user(other).get("/api/v2/access-tokens"))["count"] == 0
    problem(hub.as_user(name).get("/api/v2/access-tokens/00000000-0000-0000-0000-000000000000"), 404)


def test_revoked_token_is_refused_at_once(hub: Accounts) -> None:
    name = hub.user()
    token = hub.pat(name, "repo:write")
    # An API token obtained with the access token dies with it too.
    api = hub.client(bearer=hub.api_token(name, token["token"]))
    assert ok(api.get("/api/v2/user"))["username"] == name
    revoked = ok(hub.as_user(name).patch(f"/api/v2/access-tokens/{token['uuid']}", json={"is_active": False}))
    assert revoked["is_active"] is False
    assert set(revoked) == TOKEN_FIELDS
    problem(hub.client(bearer=token["token"]).get("/api/v2/user"), 401)
    problem(hub.client(auth=(name, token["token"])).get("/api/v2/user"), 401)
    problem(api.get("/api/v2/user"), 401)
    assert token_status(hub.anon, (name, token["token"])) == 401
    relabelled = ok(
        hub.as_user(name).patch(
            f"/api/v2/access-tokens/{token['uuid']}", json={"token_label": "again", "is_active": True}
        )
    )
    assert relabelled["is_active"] is True
    assert relabelled["token_label"] == "again"
    assert token_status(hub.anon, (name, token["token"])) == 200
    response = hub.as_user(name).delete(f"/api/v2/access-tokens/{token['uuid']}")
    assert response.status_code == 204
    assert response.content == b""
    problem(hub.as_user(name).get(f"/api/v2/access-tokens/{token['uuid']}"), 404)
    assert token_status(hub.anon, (name, token["token"])) == 401


def test_expired_token_is_refused(hub: Accounts, secure_server: AppServer) -> None:
    name = hub.user()
    token = hub.pat(name, "repo:read", expires_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
    assert token_status(hub.anon, (name, token["token"])) == 200
    secure_server.execute_sql("UPDATE access_tokens SET expires_at = created_at WHERE id = :id", id=token["uuid"])
    assert token_status(hub.anon, (name, token["token"])) == 401
    problem(hub.client(bearer=token["token"]).get("/api/v2/user"), 401)


def test_token_requests_are_validated(hub: Accounts) -> None:
    client = hub.as_user(hub.user())
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    for bad in (
        {"token_label": "x", "scopes": []},
        {"token_label": "x", "scopes": ["repo:everything"]},
        {"token_label": "", "scopes": ["repo:read"]},
        {"token_label": "x" * 101, "scopes": ["repo:read"]},
        {"token_label": "x", "scopes": ["repo:read"], "expires_at": "2030-01-01T00:00:00"},
        {"token_label": "x", "scopes": ["repo:read"], "expires_at": "9999-12-31T23:59:59-23:59"},
        {"token_label": "x", "scopes": ["repo:read"], "repositories": []},
        {"scopes": ["repo:read"]},
    ):
        problem(client.post("/api/v2/access-tokens", json=bad), 422)
    problem(
        client.post("/api/v2/access-tokens", json={"token_label": "x", "scopes": ["repo:read"], "expires_at": past}),
        400,
    )
    body = {"token_label": "x", "scopes": ["repo:read"], "repositories": ["Not A Name"]}
    problem(client.post("/api/v2/access-tokens", json=body), 400)
    problem(client.patch("/api/v2/access-tokens/whatever", json={"is_active": "maybe"}), 422)
