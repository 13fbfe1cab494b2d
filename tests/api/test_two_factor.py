"""Two-factor sign-in through the Hub API: enrolment (sealed secret, otpauth URI, QR code as SVG), confirmation
by a first code (recovery codes shown once), Docker Hub's ``/users/login`` → 401 ``login_2fa_token`` →
``/users/2fa-login``, wrong / replayed codes and used tokens refused, recovery codes single use, throttling,
passwords refused on ``/v2/token`` and Basic auth while tokens keep working, turning it off, and the administrator's
reset (audited)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyotp
import pytest

from tests.support.checks import problem, unique
from tests.support.hub_accounts import PASSWORD, Accounts, grant_actions, ok, token_status
from tests.support.oci import push_image


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {
        "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
        "DOCKYARD_LOGIN_MAX_FAILURES_PER_IP": "1000000",
        "DOCKYARD_LOGIN_MAX_FAILURES_PER_USER": "4",
        "DOCKYARD_LOGIN_BACKOFF_SECONDS": "120",
    }


def code_at(secret: str, steps_from_now: int = 0) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_from_now)


def fresh_step() -> None:
    """Wait out the last seconds of a 30-second step, so that a test's codes of steps -1…+1 stay in the window."""
    left = 30 - time.time() % 30
    if left < 4:
        time.sleep(left + 0.1)


@dataclass
class Enrolled:
    name: str
    secret: str
    recovery_codes: list[str]
    bearer: str  # an API token got with the password before two-factor sign-in was on


def enrol(hub: Accounts, name: str | None = None) -> Enrolled:
    name = name or hub.user("tfa")
    bearer = hub.api_token(name)
    me = hub.client(bearer=bearer)
    made = ok(me.post(f"/api/v2/users/{name}/2fa/enrolment"), 201)
    secret = made["secret"]
    assert made["otpauth_uri"].startswith("otpauth://totp/")
    assert f"secret={secret}" in made["otpauth_uri"]
    assert "issuer=Dockyard" in made["otpauth_uri"]
    assert made["qr_svg"].startswith("<svg")
    assert made["qr_svg"].rstrip().endswith("</svg>")
    fresh_step()
    codes = ok(me.post(f"/api/v2/users/{name}/2fa/confirm", json={"code": code_at(secret, -1)}))["recovery_codes"]
    return Enrolled(name, secret, codes, bearer)


def pat_of(hub: Accounts, user: Enrolled) -> str:
    body = {"token_label": unique("l"), "scopes": ["repo:write"]}
    token: str = ok(hub.client(bearer=user.bearer).post("/api/v2/access-tokens", json=body), 201)["token"]
    return token


def login_token(hub: Accounts, name: str) -> str:
    response = hub.anon.post("/api/v2/users/login", json={"username": name, "password": PASSWORD})
    body = problem(response, 401)
    assert "two-factor" in body["detail"]
    token: str = body["login_2fa_token"]
    assert token
    return token


def second_step(hub: Accounts, token: str, code: str) -> Any:
    return hub.anon.post("/api/v2/users/2fa-login", json={"login_2fa_token": token, "code": code})


@pytest.fixture
def enrolled(hub: Accounts) -> Enrolled:
    return enrol(hub)


def test_enrolment_needs_a_valid_first_code_and_shows_recovery_codes_once(hub: Accounts) -> None:
    name = hub.user("tfa")
    me = hub.client(bearer=hub.api_token(name))
    assert ok(me.get(f"/api/v2/users/{name}/2fa")) == {
        "enabled": False,
        "pending": False,
        "enabled_at": None,
        "recovery_codes_left": 0,
    }
    problem(me.post(f"/api/v2/users/{name}/2fa/confirm", json={"code": "123456"}), 409)  # nothing pending
    secret = ok(me.post(f"/api/v2/users/{name}/2fa/enrolment"), 201)["secret"]
    assert ok(me.get(f"/api/v2/users/{name}/2fa"))["pending"] is True
    wrong = str((int(code_at(secret)) + 1) % 1_000_000).zfill(6)
    problem(me.post(f"/api/v2/users/{name}/2fa/confirm", json={"code": wrong}), 400)
    # A pending enrolment does not change sign-in yet.
    assert hub.anon.post("/api/v2/users/login", json={"username": name, "password": PASSWORD}).status_code == 200
    fresh_step()
    codes = ok(me.post(f"/api/v2/users/{name}/2fa/confirm", json={"code": code_at(secret)}))["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    state = ok(me.get(f"/api/v2/users/{name}/2fa"))
    assert state["enabled"] is True
    assert state["pending"] is False
    assert state["recovery_codes_left"] == 10
    problem(me.post(f"/api/v2/users/{name}/2fa/enrolment"), 409)  # already on
    # Another user, and an administrator, may not enrol or turn it off for them; a PAT may not either.
    other = hub.user("other")
    problem(hub.as_user(other).post(f"/api/v2/users/{name}/2fa/enrolment"), 403)
    problem(hub.admin.post(f"/api/v2/users/{name}/2fa/disable", json={"code": codes[0]}), 403)
    problem(hub.as_user(other).get(f"/api/v2/users/{name}/2fa"), 403)
    assert ok(hub.admin.get(f"/api/v2/users/{name}/2fa"))["enabled"] is True
    pat = hub.pat(other, "repo:admin")["token"]
    problem(hub.client(bearer=pat).post(f"/api/v2/users/{other}/2fa/enrolment"), 403)
    # The audit log has the change.
    actions = [entry["action"] for entry in ok(me.get(f"/api/v2/auditlogs/{name}"))["logs"]]
    assert "user.2fa.enable" in actions


def test_login_answers_hubs_401_and_2fa_login_completes_it_once(hub: Accounts, enrolled: Enrolled) -> None:
    fresh_step()
    token = login_token(hub, enrolled.name)
    problem(second_step(hub, token, "000000" if code_at(enrolled.secret) != "000000" else "111111"), 401)
    done = ok(second_step(hub, token, code_at(enrolled.secret)))
    assert ok(hub.client(bearer=done["token"]).get("/api/v2/user"))["username"] == enrolled.name
    # The token is single use…
    problem(second_step(hub, token, code_at(enrolled.secret, 1)), 401)
    # …and a code of a time step already used is a replay, even with a new login token.
    problem(second_step(hub, login_token(hub, enrolled.name), code_at(enrolled.secret)), 401)
    # An unknown token is refused.
    problem(second_step(hub, "not-a-token", code_at(enrolled.secret, 1)), 401)
    # The next step's code still works (clock drift of one step is allowed).
    ok(second_step(hub, login_token(hub, enrolled.name), code_at(enrolled.secret, 1)))
    logs = ok(hub.client(bearer=enrolled.bearer).get(f"/api/v2/auditlogs/{enrolled.name}"))["logs"]
    assert any(entry["action"] == "login.failure" for entry in logs)


def test_recovery_codes_work_once(hub: Accounts, enrolled: Enrolled) -> None:
    code = enrolled.recovery_codes[0]
    done = ok(second_step(hub, login_token(hub, enrolled.name), code.upper()))
    assert done["token"]
    problem(second_step(hub, login_token(hub, enrolled.name), code), 401)
    state = ok(hub.client(bearer=done["token"]).get(f"/api/v2/users/{enrolled.name}/2fa"))
    assert state["recovery_codes_left"] == 9


def test_wrong_codes_are_throttled_like_passwords(hub: Accounts, enrolled: Enrolled) -> None:
    token = login_token(hub, enrolled.name)
    right = code_at(enrolled.secret)
    wrong = str((int(right) + 7) % 1_000_000).zfill(6)
    statuses = [second_step(hub, token, wrong).status_code for _ in range(3)]
    statuses += [second_step(hub, login_token(hub, enrolled.name), wrong).status_code for _ in range(2)]
    assert statuses[:4] == [401, 401, 401, 401]
    assert statuses[4] == 429
    # Backing off: even the right code is not checked now.
    refused = second_step(hub, login_token(hub, enrolled.name), right)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0


def test_passwords_are_refused_for_clients_and_tokens_keep_working(hub: Accounts, enrolled: Enrolled) -> None:
    auth = (enrolled.name, PASSWORD)
    refused = hub.anon.get("/v2/token", params={"scope": "repository:x/y:pull"}, auth=auth)
    assert refused.status_code == 401
    assert "personal access token" in refused.text
    body = problem(hub.as_user(enrolled.name).get("/api/v2/user"), 401)  # Basic auth with the password
    assert "personal access token" in body["detail"]
    body = problem(hub.anon.post("/api/v2/auth/token", json={"identifier": enrolled.name, "secret": PASSWORD}), 401)
    assert "personal access token" in body["detail"]
    # A wrong password still says only that.
    body = problem(hub.anon.post("/api/v2/users/login", json={"username": enrolled.name, "password": "nope-" * 3}), 401)
    assert "login_2fa_token" not in body
    # Personal access tokens are what clients use.
    pat = pat_of(hub, enrolled)
    assert token_status(hub.anon, (enrolled.name, pat)) == 200
    assert ok(hub.client(auth=(enrolled.name, pat)).get("/api/v2/user"))["username"] == enrolled.name
    assert grant_actions(hub.anon, f"{enrolled.name}/app", (enrolled.name, pat)) == ["pull", "push"]


def test_robots_and_org_access_tokens_are_unaffected(hub: Accounts) -> None:
    owner = enrol(hub)
    owner_client = hub.client(bearer=owner.bearer)
    org = unique("org")
    ok(owner_client.post("/api/v2/orgs", json={"orgname": org}), 201)
    robot = ok(owner_client.post(f"/api/v2/orgs/{org}/robots", json={"name": "ci"}), 201)
    assert token_status(hub.anon, (robot["name"], robot["secret"])) == 200
    oat = ok(
        owner_client.post(
            f"/api/v2/orgs/{org}/access-tokens",
            json={"label": "ci", "resources": [{"type": "TYPE_REPO", "path": f"{org}/app", "scopes": ["repo-pull"]}]},
        ),
        201,
    )
    assert token_status(hub.anon, (org, oat["token"])) == 200


def test_turning_it_off_needs_a_code(hub: Accounts, enrolled: Enrolled) -> None:
    me = hub.client(bearer=enrolled.bearer)
    path = f"/api/v2/users/{enrolled.name}/2fa/disable"
    problem(me.post(path, json={"code": "not-a-code"}), 400)
    problem(me.post(path, json={}), 422)
    response = me.post(path, json={"code": enrolled.recovery_codes[3]})
    assert response.status_code == 204, response.text
    assert ok(me.get(f"/api/v2/users/{enrolled.name}/2fa"))["enabled"] is False
    assert ok(hub.anon.post("/api/v2/users/login", json={"username": enrolled.name, "password": PASSWORD}))["token"]
    assert token_status(hub.anon, (enrolled.name, PASSWORD)) == 200
    problem(me.post(path, json={"code": enrolled.recovery_codes[4]}), 409)  # not on any more


def test_new_recovery_codes_replace_the_old_ones(hub: Accounts, enrolled: Enrolled) -> None:
    me = hub.client(bearer=enrolled.bearer)
    fresh = ok(me.post(f"/api/v2/users/{enrolled.name}/2fa/recovery-codes", json={"code": enrolled.recovery_codes[1]}))
    assert len(fresh["recovery_codes"]) == 10
    problem(second_step(hub, login_token(hub, enrolled.name), enrolled.recovery_codes[2]), 401)
    ok(second_step(hub, login_token(hub, enrolled.name), fresh["recovery_codes"][0]))


def test_site_administrators_reset_a_second_factor(hub: Accounts, enrolled: Enrolled) -> None:
    other = hub.user("other")
    problem(hub.as_user(other).delete(f"/api/v2/users/{enrolled.name}/2fa"), 403)
    problem(hub.client(bearer=enrolled.bearer).delete(f"/api/v2/users/{enrolled.name}/2fa"), 403)
    response = hub.admin.delete(f"/api/v2/users/{enrolled.name}/2fa")
    assert response.status_code == 204, response.text
    assert token_status(hub.anon, (enrolled.name, PASSWORD)) == 200
    logs = ok(hub.admin.get(f"/api/v2/auditlogs/{enrolled.name}"))["logs"]
    reset = [entry for entry in logs if entry["action"] == "user.2fa.reset"]
    assert reset
    assert reset[0]["actor"] == "admin"
    problem(hub.admin.delete("/api/v2/users/no-such-user-here/2fa"), 404)


def test_an_organization_can_require_two_factor_of_its_members(hub: Accounts) -> None:
    owner = enrol(hub)
    owner_client = hub.client(bearer=owner.bearer)
    member, plain_owner = hub.user("member"), hub.user("powner")
    org = unique("org")
    ok(owner_client.post("/api/v2/orgs", json={"orgname": org}), 201)
    ok(owner_client.post(f"/api/v2/orgs/{org}/members", json={"member": member}), 201)
    ok(owner_client.post(f"/api/v2/orgs/{org}/members", json={"member": plain_owner, "role": "owner"}), 201)
    push_image(hub.admin, f"{org}/app", "v1")
    team = ok(owner_client.post(f"/api/v2/orgs/{org}/groups", json={"name": "readers"}), 201)["name"]
    ok(owner_client.post(f"/api/v2/orgs/{org}/groups/{team}/members", json={"member": member}))
    ok(owner_client.put(f"/api/v2/orgs/{org}/groups/{team}/repositories/app", json={"permission": "read"}))
    assert grant_actions(hub.anon, f"{org}/app", (member, PASSWORD)) == ["pull"]
    settings = f"/api/v2/orgs/{org}/settings"
    off = {"enabled": False, "allow_official_images": True, "allow_verified_publishers": True}
    # An owner without two-factor sign-in may not require it (they would lock themselves out).
    problem(hub.as_user(plain_owner).put(settings, json={"restricted_images": off, "require_two_factor": True}), 409)
    changed = ok(owner_client.put(settings, json={"restricted_images": off, "require_two_factor": True}))
    assert changed["require_two_factor"] is True
    assert ok(hub.as_user(member).get(settings))["require_two_factor"] is True
    # The member without two-factor sign-in: no access through /v2/token, a clear refusal on the API.
    assert grant_actions(hub.anon, f"{org}/app", (member, PASSWORD)) == []
    body = problem(hub.as_user(member).get(f"/api/v2/namespaces/{org}/repositories/app"), 403)
    assert "requires two-factor authentication" in body["detail"]
    # Their personal access tokens are refused the organization's repositories too.
    pat = hub.pat(member, "repo:read")["token"]
    assert grant_actions(hub.anon, f"{org}/app", (member, pat)) == []
    # The enrolled owner keeps access; so does the member once enrolled.
    assert "pull" in grant_actions(hub.anon, f"{org}/app", (owner.name, pat_of(hub, owner)))
    enrolled = enrol(hub, member)
    assert grant_actions(hub.anon, f"{org}/app", (member, pat_of(hub, enrolled))) == ["pull"]
    # The owner without two-factor sign-in is refused too, until the requirement is off again.
    assert grant_actions(hub.anon, f"{org}/app", (plain_owner, PASSWORD)) == []
    ok(owner_client.put(settings, json={"restricted_images": off, "require_two_factor": False}))
    assert "pull" in grant_actions(hub.anon, f"{org}/app", (plain_owner, PASSWORD))
