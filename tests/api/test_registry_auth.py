"""Docker token authentication on ``/v2`` against a server with authentication on: challenges, the token
endpoint (GET and the OAuth2 POST), grants, refresh tokens, bad tokens, Basic auth, private repositories,
the filtered catalog and brute-force protection."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.support.oci import error_codes, push_image, unique_name
from tests.support.server import DockyardServer

ADMIN = ("admin", DockyardServer.ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(
        tmp_path_factory.mktemp("secure") / "data",
        secure=True,
        env={
            "DOCKYARD_LOGIN_MAX_FAILURES_PER_USER": "4",
            "DOCKYARD_LOGIN_BACKOFF_SECONDS": "120",
            "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
        },
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def anon(secure: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secure.url, timeout=30) as c:
        yield c


@pytest.fixture
def admin(secure: DockyardServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=secure.url, timeout=30, auth=ADMIN) as c:
        yield c


def challenge(response: httpx.Response) -> dict[str, str]:
    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    assert scheme == "Bearer"
    return dict(re.findall(r'(\w+)="([^"]*)"', params))


def token_for(client: httpx.Client, *scopes: str, auth: Any = None, **params: str) -> dict[str, Any]:
    response = client.get("/v2/token", params=[*(("scope", s) for s in scopes), *params.items()], auth=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_base_challenges_anonymous_callers(anon: httpx.Client, secure: DockyardServer) -> None:
    response = anon.get("/v2/")
    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    params = challenge(response)
    assert params["realm"] == f"{secure.url}/v2/token"
    assert params["service"] == secure.host
    assert response.headers["docker-distribution-api-version"] == "registry/2.0"


def test_base_accepts_basic_and_bearer_and_refuses_wrong_password(anon: httpx.Client) -> None:
    assert anon.get("/v2/", auth=ADMIN).status_code == 200
    assert anon.get("/v2/", auth=("admin", "wrong-password")).status_code == 401
    token = token_for(anon, auth=ADMIN)["token"]
    assert anon.get("/v2/", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_token_response_shape(anon: httpx.Client) -> None:
    body = token_for(anon, "repository:admin/app:pull,push", auth=ADMIN, service="whatever")
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert body["issued_at"].endswith("Z")
    assert "refresh_token" not in body
    decoded = claims(body["token"])
    assert decoded["sub"] == "admin"
    assert decoded["access"] == [{"type": "repository", "name": "admin/app", "actions": ["pull", "push"]}]
    assert jwt.get_unverified_header(body["token"])["kid"]


def test_anonymous_grant_is_pull_of_public_only(
    admin: httpx.Client, anon: httpx.Client, secure: DockyardServer
) -> None:
    public, private = unique_name("admin"), unique_name("admin")
    push_image(admin, public)
    push_image(admin, private)
    secure.execute_sql("UPDATE repositories SET is_private = false WHERE name = :name", name=public)
    body = token_for(anon, f"repository:{public}:pull,push", f"repository:{private}:pull", "registry:catalog:*")
    assert claims(body["token"])["sub"] == ""
    assert claims(body["token"])["access"] == [
        {"type": "repository", "name": public, "actions": ["pull"]},
        {"type": "repository", "name": private, "actions": []},
        {"type": "registry", "name": "catalog", "actions": ["*"]},
    ]
    bearer = {"Authorization": f"Bearer {body['token']}"}
    assert anon.get(f"/v2/{public}/manifests/latest", headers=bearer).status_code == 200
    # The private repository answers exactly like one that does not exist.
    hidden = anon.get(f"/v2/{private}/manifests/latest", headers=bearer)
    missing = anon.get("/v2/admin/does-not-exist/manifests/latest", headers=bearer)
    assert hidden.status_code == missing.status_code == 401
    assert hidden.json() != {}
    assert error_codes(hidden) == error_codes(missing) == ["UNAUTHORIZED"]
    # And without any token: a challenge naming the scope to ask for.
    plain = anon.get(f"/v2/{private}/manifests/latest")
    assert plain.status_code == 401
    assert challenge(plain)["scope"] == f"repository:{private}:pull"
    # Anonymous pull of the public one straight away works too (no token needed).
    assert anon.get(f"/v2/{public}/manifests/latest").status_code == 200


def test_catalog_lists_only_what_the_caller_may_see(
    admin: httpx.Client, anon: httpx.Client, secure: DockyardServer
) -> None:
    public, private = unique_name("admin"), unique_name("admin")
    push_image(admin, public)
    push_image(admin, private)
    secure.execute_sql("UPDATE repositories SET is_private = false WHERE name = :name", name=public)
    assert anon.get("/v2/_catalog").status_code == 401
    assert challenge(anon.get("/v2/_catalog"))["scope"] == "registry:catalog:*"
    token = token_for(anon, "registry:catalog:*")["token"]
    listed = anon.get("/v2/_catalog", params={"n": 10000}, headers={"Authorization": f"Bearer {token}"}).json()
    assert public in listed["repositories"]
    assert private not in listed["repositories"]
    everything = admin.get("/v2/_catalog", params={"n": 10000}).json()["repositories"]
    assert public in everything
    assert private in everything
    # A token without the catalog scope is challenged for it.
    narrow = token_for(anon, f"repository:{public}:pull")["token"]
    response = anon.get("/v2/_catalog", headers={"Authorization": f"Bearer {narrow}"})
    assert response.status_code == 401
    assert challenge(response)["error"] == "insufficient_scope"


def test_token_without_push_is_challenged_when_the_account_may_push(anon: httpx.Client) -> None:
    repo = unique_name("admin")
    pull_only = token_for(anon, f"repository:{repo}:pull", auth=ADMIN)["token"]
    response = anon.post(f"/v2/{repo}/blobs/uploads/", headers={"Authorization": f"Bearer {pull_only}"})
    assert response.status_code == 401
    params = challenge(response)
    assert params["scope"] == f"repository:{repo}:pull,push"
    assert params["error"] == "insufficient_scope"


def test_offline_token_gives_a_refresh_token_usable_with_the_oauth2_form(anon: httpx.Client) -> None:
    body = token_for(anon, auth=ADMIN, offline_token="true", client_id="docker")
    refresh = body["refresh_token"]
    response = anon.post(
        "/v2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": "docker",
            "service": "x",
            "scope": "repository:admin/app:pull repository:admin/other:push",
        },
    )
    assert response.status_code == 200, response.text
    oauth = response.json()
    assert oauth["access_token"]
    assert oauth["expires_in"] >= 60
    assert oauth["scope"] == "repository:admin/app:pull repository:admin/other:push"
    assert oauth["refresh_token"] == refresh
    # A refresh token is not an access token.
    assert anon.get("/v2/", headers={"Authorization": f"Bearer {refresh}"}).status_code == 401


def test_oauth2_password_grant_and_errors(anon: httpx.Client) -> None:
    ok = anon.post(
        "/v2/token",
        data={
            "grant_type": "password",
            "username": ADMIN[0],
            "password": ADMIN[1],
            "client_id": "t",
            "access_type": "offline",
            "scope": "repository:admin/x:pull",
        },
    )
    assert ok.status_code == 200
    assert ok.json()["refresh_token"]
    no_client = anon.post("/v2/token", data={"grant_type": "password", "username": "a", "password": "b"})
    assert no_client.status_code == 400
    assert no_client.json()["error"] == "invalid_request"
    bad_grant = anon.post("/v2/token", data={"grant_type": "magic", "client_id": "t"})
    assert bad_grant.status_code == 400
    assert bad_grant.json()["error"] == "unsupported_grant_type"
    bad_refresh = anon.post(
        "/v2/token", data={"grant_type": "refresh_token", "refresh_token": "x.y.z", "client_id": "t"}
    )
    assert bad_refresh.status_code == 401
    assert bad_refresh.json()["error"] == "invalid_grant"
    bad_scope = anon.post("/v2/token", data={"grant_type": "password", "client_id": "t", "scope": "nonsense"})
    assert bad_scope.status_code == 400
    assert bad_scope.json()["error"] == "invalid_scope"


@pytest.mark.parametrize("scope", ["nonsense", "repository:UPPER/case:pull", "repository:a/b", "repository::pull"])
def test_malformed_scope_on_the_token_get_is_a_400(anon: httpx.Client, scope: str) -> None:
    response = anon.get("/v2/token", params=[("scope", "repository:admin/x:pull"), ("scope", scope)])
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_scope"
    assert error_codes(response) == ["INVALID_SCOPE"]
    assert response.headers["cache-control"] == "no-store"


def _forge(token: str, **changes: Any) -> str:
    header, _payload, signature = token.split(".")
    body = {**claims(token), **changes}
    encoded = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_bad_tokens_are_refused_with_invalid_token(anon: httpx.Client, admin: httpx.Client) -> None:
    repo = unique_name("admin")
    push_image(admin, repo)
    good = token_for(anon, f"repository:{repo}:pull", auth=ADMIN)["token"]
    header = json.loads(base64.urlsafe_b64decode(good.split(".")[0] + "=="))

    def b64(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    payload = good.split(".")[1]
    bad = {
        "tampered": _forge(good, access=[{"type": "repository", "name": repo, "actions": ["pull", "push", "delete"]}]),
        "wrong audience": _forge(good, aud="elsewhere"),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "wrong key id": f"{b64({**header, 'kid': 'someone-elses-key'})}.{payload}.{good.split('.')[2]}",
        "truncated": good[:-12],
        "garbage": "not-a-jwt",
    }
    for label, token in bad.items():
        response = anon.get(f"/v2/{repo}/manifests/latest", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, label
        assert error_codes(response) == ["UNAUTHORIZED"], label
        assert challenge(response).get("error") == "invalid_token", label
    assert anon.get(f"/v2/{repo}/manifests/latest", headers={"Authorization": f"Bearer {good}"}).status_code == 200


def test_unsupported_authorization_scheme(anon: httpx.Client) -> None:
    response = anon.get("/v2/admin/x/tags/list", headers={"Authorization": "Digest abc"})
    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    malformed = anon.get("/v2/", headers={"Authorization": "Basic !!!not-base64"})
    assert malformed.status_code == 401


def test_basic_auth_straight_on_v2_pushes_and_pulls(admin: httpx.Client) -> None:
    repo = unique_name("admin")
    image = push_image(admin, repo)
    assert admin.get(f"/v2/{repo}/manifests/latest").content == image.manifest
    assert admin.delete(f"/v2/{repo}/manifests/{image.digest}").status_code == 202


def test_wrong_credentials_on_the_token_endpoint(anon: httpx.Client) -> None:
    response = anon.get("/v2/token", params={"scope": "repository:a/b:pull"}, auth=("admin", "nope-nope"))
    assert response.status_code == 401
    assert error_codes(response) == ["UNAUTHORIZED"]
    assert response.json()["errors"][0]["message"] == "incorrect username or password"
    unknown = anon.get("/v2/token", auth=("nobody-here", "nope-nope"))
    assert unknown.status_code == 401
    assert unknown.json() == response.json()


def test_repeated_failures_back_the_user_off_with_429(anon: httpx.Client, secure: DockyardServer) -> None:
    # The module's server backs a user off from an address after 4 failures from it
    # (DOCKYARD_LOGIN_MAX_FAILURES_PER_USER; tests/security/test_throttle.py covers the rest).
    user = "lockme"
    statuses = [anon.get("/v2/token", auth=(user, f"wrong-{i}")).status_code for i in range(4)]
    assert statuses == [401, 401, 401, 401]
    locked = anon.get("/v2/token", auth=(user, "wrong-again"))
    assert locked.status_code == 429
    assert error_codes(locked) == ["TOOMANYREQUESTS"]
    assert int(locked.headers["retry-after"]) > 0
    # The backoff is per user (and address): the administrator is not affected.
    assert anon.get("/v2/token", auth=ADMIN).status_code == 200


def test_secrets_never_reach_the_log(secure: DockyardServer, anon: httpx.Client) -> None:
    anon.get("/v2/token", auth=ADMIN, params={"offline_token": "true", "client_id": "x"})
    time.sleep(0.2)
    log = Path(secure.log_path).read_text()
    assert DockyardServer.ADMIN_PASSWORD not in log
    assert "eyJ" not in log  # no JWT in the access log


def test_repeated_failures_from_one_address_back_the_address_off(tmp_path: Path) -> None:
    server = DockyardServer(
        tmp_path / "data",
        secure=True,
        env={"DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": "3", "DOCKYARD_LOGIN_BACKOFF_SECONDS": "120"},
    )
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            # Different user names each time: the per-user counters never fill; the address's does.
            statuses = [client.get("/v2/token", auth=(f"user{i}", "wrong-password")).status_code for i in range(3)]
            assert statuses == [401, 401, 401]
            locked = client.get("/v2/token", auth=ADMIN)
            assert locked.status_code == 429
            assert int(locked.headers["retry-after"]) > 0
            api = client.post("/api/v2/auth/token", json={"identifier": ADMIN[0], "secret": ADMIN[1]})
            assert api.status_code == 429
            assert api.headers["content-type"].startswith("application/problem+json")
            assert int(api.headers["retry-after"]) > 0
    finally:
        server.stop()
