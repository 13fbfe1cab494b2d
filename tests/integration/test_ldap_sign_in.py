"""LDAP sign-in against a real OpenLDAP (Debian's ``slapd``, started by ``tests/support/ldap.py``): a directory
user's password works at every door (the token endpoint, Basic on /v2, the Hub's login, the web hub's sign-in),
the first sign-in creates an account with no local password, groups are kept in sync with teams, wrong passwords
are throttled as local ones are, StartTLS and LDAPS verify the server's certificate, a local account is never
taken over by a directory entry of the same name, and a directory that is down costs nobody but its own users.

The main server speaks StartTLS to slapd with a search account whose password is sealed with the server secret.
Client addresses are simulated with ``X-Forwarded-For`` from 127.0.0.1, which the servers trust."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from dockyard.auth.secrets import SecretBox
from tests.support.app_server import AppServer
from tests.support.hub import HubAdmin
from tests.support.ldap import GROUPS_DN, ROOT_DN, ROOT_PASSWORD, USERS_DN, DirectoryEntryUser, SlapdServer, group_dn
from tests.support.tls import TestCA

LIMIT = 3  # DOCKYARD_LOGIN_MAX_FAILURES_PER_USER below
ORG = "ldapcorp"
SECRET = "ldap-test-server-secret-0123456789"
USERS = {
    "alice": "alice-directory-pw",
    "bobby": "bobby-directory-pw",
    "carol": "carol-directory-pw",
    "david": "david-directory-pw",
    "erin": "erin-directory-pw",
    "frank": "frank-directory-pw",
}
ADMIN = ("admin", AppServer.ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, TestCA]:
    """The CA that issued slapd's certificate, and one that did not."""
    base = tmp_path_factory.mktemp("ldap-pki")
    return TestCA(base / "ca"), TestCA(base / "other", name="Untrusted test CA")


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory, cas: tuple[TestCA, TestCA]) -> Iterator[SlapdServer]:
    users = [DirectoryEntryUser(uid, password, f"{uid}@directory.example") for uid, password in USERS.items()]
    server = SlapdServer(tmp_path_factory.mktemp("slapd"), cas[0], users, {"devs": ["alice", "erin"], "ops": ["bobby"]})
    server.start()
    yield server
    server.stop()


def ldap_env(url: str, ca_file: Path, **extra: str) -> dict[str, str]:
    return {
        "DOCKYARD_LDAP_URL": url,
        "DOCKYARD_LDAP_CA_FILE": str(ca_file),
        "DOCKYARD_LDAP_TIMEOUT_SECONDS": "3",
        "DOCKYARD_LDAP_USER_SEARCH_BASE": USERS_DN,
        "DOCKYARD_LDAP_GROUP_SEARCH_BASE": GROUPS_DN,
        "DOCKYARD_LDAP_BIND_DN": ROOT_DN,
        "DOCKYARD_LDAP_BIND_PASSWORD": ROOT_PASSWORD,
        "DOCKYARD_SECRET_KEY": SECRET,
        "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
        "DOCKYARD_TRUSTED_PROXIES": "127.0.0.1/32",
        **extra,
    }


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, slapd: SlapdServer, cas: tuple[TestCA, TestCA]
) -> Iterator[AppServer]:
    env = ldap_env(
        slapd.url,
        cas[0].cert_path,
        DOCKYARD_LDAP_START_TLS="true",
        DOCKYARD_LDAP_BIND_PASSWORD="",
        DOCKYARD_LDAP_BIND_PASSWORD_SEALED=SecretBox(SECRET).seal(ROOT_PASSWORD.encode()),
        # By DN and by cn: both name a group.
        DOCKYARD_LDAP_GROUP_TEAMS=f"{group_dn('devs')}={ORG}/developers; ops={ORG}/operators",
        DOCKYARD_LOGIN_MAX_FAILURES_PER_USER=str(LIMIT),
        DOCKYARD_LOGIN_BACKOFF_SECONDS="120",  # the backoff outlasts the module
    )
    srv = AppServer(tmp_path_factory.mktemp("ldap-dockyard") / "data", secure=True, env=env)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin(server: AppServer) -> Iterator[HubAdmin]:
    hub = HubAdmin(server)
    hub._ok(hub.client.post("/api/v2/orgs", json={"orgname": ORG, "owner": "admin"}), 201)
    for team in ("developers", "operators"):
        hub._ok(hub.client.post(f"/api/v2/orgs/{ORG}/groups", json={"name": team}), 201)
    yield hub
    hub.close()


def address() -> str:
    """A client address of its own (10.x.y.z), so that tests do not share throttle counters."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def token(server: AppServer, user: str, password: str, source: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": source or address()}
    return httpx.get(
        f"{server.url}/v2/token", params={"service": server.host}, auth=(user, password), headers=headers, timeout=30
    )


def hub_login(server: AppServer, user: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{server.url}/api/v2/users/login",
        json={"username": user, "password": password},
        headers={"X-Forwarded-For": address()},
        timeout=30,
    )


def web_login(server: AppServer, user: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30, headers={"X-Forwarded-For": address()}) as client:
        found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert found is not None
        answer = client.post("/login", data={"username": user, "password": password, "csrf_token": found.group(1)})
        if answer.status_code == 303:
            page = client.get("/")
            assert f">{user}<" in page.text, "the page after sign-in names the user"
        return answer


def team_members(admin: HubAdmin, team: str) -> set[str]:
    body = admin._ok(admin.client.get(f"/api/v2/orgs/{ORG}/groups/{team}/members", params={"page_size": 100}))
    return {member["username"] for member in body["results"]}


def audit(server: AppServer, action: str, target: str) -> list[dict[str, Any]]:
    rows = server.query_sql(
        "SELECT actor, data FROM audit_log WHERE action = :action AND target = :target ORDER BY id",
        action=action,
        target=target,
    )
    return [{"actor": actor, **json.loads(data)} for actor, data in rows]


def test_a_directory_user_signs_in_at_every_door(server: AppServer, admin: HubAdmin) -> None:
    user, password = "alice", USERS["alice"]
    issued = token(server, user, password)
    assert issued.status_code == 200, issued.text
    assert issued.json()["token"]
    basic = httpx.get(f"{server.url}/v2/", auth=(user, password), headers={"X-Forwarded-For": address()}, timeout=30)
    assert basic.status_code == 200, basic.text
    login = hub_login(server, user, password)
    assert login.status_code == 200, login.text
    me = httpx.get(f"{server.url}/api/v2/user", headers={"Authorization": f"Bearer {login.json()['token']}"})
    assert me.status_code == 200, me.text
    assert me.json()["username"] == user
    assert web_login(server, user, password).status_code == 303
    # Created on the first sign-in: external, no local password, its e-mail from the directory.
    rows = server.query_sql("SELECT auth_source, password_hash, email FROM accounts WHERE name = 'alice'")
    assert rows == [("ldap", None, "alice@directory.example")]
    assert audit(server, "account.create", user) == [
        {"actor": "ldap", "kind": "user", "is_admin": False, "auth_source": "ldap"}
    ]


def test_groups_are_kept_in_sync_with_teams_at_each_sign_in(
    server: AppServer, admin: HubAdmin, slapd: SlapdServer
) -> None:
    user, password = "erin", USERS["erin"]
    assert token(server, user, password).status_code == 200
    assert user in team_members(admin, "developers")  # devs, named by its DN
    assert user not in team_members(admin, "operators")
    slapd.remove_member("devs", user)
    slapd.add_member("ops", user)
    assert token(server, user, password).status_code == 200
    assert user not in team_members(admin, "developers")
    assert user in team_members(admin, "operators")  # ops, named by its cn
    assert [(e["actor"], e["team"]) for e in audit(server, "team.member.add", user)] == [
        ("ldap", "developers"),
        ("ldap", "operators"),
    ]
    assert [(e["actor"], e["team"]) for e in audit(server, "team.member.remove", user)] == [("ldap", "developers")]
    assert [e["actor"] for e in audit(server, "org.member.add", user)] == ["ldap"]
    # Nothing changed in the directory: a sign-in changes nothing.
    assert token(server, user, password).status_code == 200
    assert len(audit(server, "team.member.add", user)) == 2
    assert len(audit(server, "team.member.remove", user)) == 1


def test_wrong_passwords_are_refused_and_throttled_as_local_ones(server: AppServer, admin: HubAdmin) -> None:
    local, local_password = admin.user("local")
    for user, right in (("bobby", USERS["bobby"]), (local, local_password)):
        source = address()
        answers = [token(server, user, f"wrong-{i}", source) for i in range(LIMIT + 2)]
        assert [a.status_code for a in answers] == [401] * LIMIT + [429] * 2, user
        assert all(a.json()["errors"][0]["message"] == "incorrect username or password" for a in answers[:LIMIT])
        assert token(server, user, right, source).status_code == 429  # backing off: not even verified
        assert token(server, user, right).status_code == 200  # from another address it works
    refused = hub_login(server, "bobby", "wrong")
    assert refused.status_code == 401
    assert "ldap" not in refused.text.lower()
    assert web_login(server, "bobby", "wrong").status_code == 401
    assert token(server, "nobody", "whatever").status_code == 401  # no such entry


def test_a_local_account_is_never_taken_over_by_a_directory_entry(server: AppServer, admin: HubAdmin) -> None:
    """carol exists locally before she ever signs in through LDAP: her local password counts, the directory's
    does not, and a directory account cannot change its password locally."""
    admin._ok(
        admin.client.post(
            "/api/v2/users", json={"username": "carol", "email": "carol@local.test", "password": "carol-local-pw"}
        ),
        201,
    )
    assert token(server, "carol", USERS["carol"]).status_code == 401
    assert token(server, "carol", "carol-local-pw").status_code == 200
    rows = server.query_sql("SELECT auth_source FROM accounts WHERE name = 'carol'")
    assert rows == [(None,)]


def test_a_directory_account_has_no_local_password(server: AppServer) -> None:
    user, password = "alice", USERS["alice"]
    login = hub_login(server, user, password)
    assert login.status_code == 200
    change = httpx.put(
        f"{server.url}/api/v2/users/{user}/password",
        headers={"Authorization": f"Bearer {login.json()['token']}"},
        json={"current_password": password, "new_password": "a-new-local-password"},
        timeout=30,
    )
    assert change.status_code == 400, change.text
    assert "managed by its directory" in change.text
    assert server.query_sql("SELECT password_hash FROM accounts WHERE name = 'alice'") == [(None,)]


@pytest.mark.parametrize(
    ("transport", "trusted", "works"),
    [("ldaps", True, True), ("ldaps", False, False), ("starttls", False, False), ("plain-no-create", True, False)],
)
def test_tls_is_verified_and_creation_follows_the_setting(
    tmp_path: Path, slapd: SlapdServer, cas: tuple[TestCA, TestCA], transport: str, trusted: bool, works: bool
) -> None:
    """LDAPS with the CA that issued slapd's certificate signs in; LDAPS or StartTLS against a certificate of an
    untrusted CA gives a clean 401 while the local administrator signs in; with ``ldap_create_users`` off, a
    directory user without an account is refused."""
    ca = cas[0] if trusted else cas[1]
    url = slapd.ldaps_url if transport == "ldaps" else slapd.url
    extra = {"DOCKYARD_LDAP_START_TLS": "true"} if transport == "starttls" else {}
    if transport == "plain-no-create":
        extra = {"DOCKYARD_LDAP_CREATE_USERS": "false"}
    srv = AppServer(tmp_path / "data", secure=True, env=ldap_env(url, ca.cert_path, **extra))
    srv.start()
    try:
        answer = token(srv, "david", USERS["david"])
        assert answer.status_code == (200 if works else 401), answer.text
        if not works:
            assert answer.json()["errors"][0]["message"] == "incorrect username or password"
            assert srv.query_sql("SELECT count(*) FROM accounts WHERE name = 'david'") == [(0,)]
        assert token(srv, *ADMIN).status_code == 200
    finally:
        srv.stop()


def test_groups_can_come_from_member_of(tmp_path: Path, slapd: SlapdServer, cas: tuple[TestCA, TestCA]) -> None:
    """Without a group search base, the user entry's memberOf lists the groups (slapd's memberof overlay keeps it)."""
    env = ldap_env(
        slapd.ldaps_url,
        cas[0].cert_path,
        DOCKYARD_LDAP_GROUP_SEARCH_BASE="",
        DOCKYARD_LDAP_GROUP_TEAMS=f"devs={ORG}/developers;{group_dn('ops')}={ORG}/operators",
    )
    srv = AppServer(tmp_path / "data", secure=True, env=env)
    srv.start()
    hub = HubAdmin(srv)
    try:
        hub._ok(hub.client.post("/api/v2/orgs", json={"orgname": ORG, "owner": "admin"}), 201)
        for team in ("developers", "operators"):
            hub._ok(hub.client.post(f"/api/v2/orgs/{ORG}/groups", json={"name": team}), 201)
        user, password = "frank", USERS["frank"]
        slapd.add_member("ops", user)
        assert token(srv, user, password).status_code == 200
        assert (team_members(hub, "developers"), team_members(hub, "operators")) == (set(), {user})
        slapd.remove_member("ops", user)
        slapd.add_member("devs", user)
        assert token(srv, user, password).status_code == 200
        assert (team_members(hub, "developers"), team_members(hub, "operators")) == ({user}, set())
    finally:
        hub.close()
        srv.stop()


def test_with_the_directory_down_local_accounts_still_sign_in(server: AppServer, slapd: SlapdServer) -> None:
    """Last in the module: it stops slapd (and starts it again)."""
    assert token(server, "alice", USERS["alice"]).status_code == 200
    slapd.stop()
    try:
        source = address()
        for _ in range(LIMIT + 1):  # a directory that is down is not the user's failure: never a backoff
            started = time.monotonic()
            refused = token(server, "alice", USERS["alice"], source)
            assert refused.status_code == 401, refused.text
            assert refused.json()["errors"][0]["message"] == "incorrect username or password"
            assert time.monotonic() - started < 10
        assert hub_login(server, "alice", USERS["alice"]).status_code == 401
        assert token(server, *ADMIN).status_code == 200
        assert hub_login(server, *ADMIN).status_code == 200
        assert web_login(server, *ADMIN).status_code == 303
        assert httpx.get(f"{server.url}/v2/", timeout=30).status_code == 401  # still serving
    finally:
        slapd.start()
    assert token(server, "alice", USERS["alice"], source).status_code == 200
    # A directory that accepts connections and never answers: each sign-in waits ldap_timeout_seconds (3 s), no
    # more, and local passwords are checked meanwhile.
    slapd.pause()
    try:
        with ThreadPoolExecutor(8) as pool:
            started = time.monotonic()
            hung = [pool.submit(token, server, "alice", USERS["alice"]) for _ in range(8)]
            time.sleep(0.5)
            assert token(server, *ADMIN).status_code == 200
            assert time.monotonic() - started < 3
            assert [answer.result().status_code for answer in hung] == [401] * 8
            assert time.monotonic() - started < 30
    finally:
        slapd.resume()
    assert token(server, "alice", USERS["alice"]).status_code == 200
