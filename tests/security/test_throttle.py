"""Brute-force protection through HTTP: failed logins back off per (account, client address); a parallel burst
cannot get more password verifications than the limit; one address's failures never lock the account out for
another address; access tokens and robot secrets are never throttled by password failures; ``X-Forwarded-For``
is honoured only from ``trusted_proxies``; and an unknown robot or user costs what a known one does.

Client addresses are simulated with ``X-Forwarded-For`` from 127.0.0.1, which the main server trusts.
Verifications are counted by ``dockyard_password_verifications_total`` on ``/metrics`` (summed over workers)."""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.hub import HubAdmin, pat
from tests.support.server import DockyardServer

LIMIT = 5  # DOCKYARD_LOGIN_MAX_FAILURES_PER_USER below
ADMIN = ("admin", DockyardServer.ADMIN_PASSWORD)
COMMON_ENV = {
    "DOCKYARD_LOGIN_MAX_FAILURES_PER_USER": str(LIMIT),
    "DOCKYARD_LOGIN_BACKOFF_SECONDS": "120",  # the backoff outlasts every test here
    "DOCKYARD_CREDENTIAL_CACHE_SECONDS": "0",
    # The production cost of a password hash (the suite runs with a cheap one, tests/conftest.py): a miss must cost
    # what a hit costs, and a check must take long enough for the concurrency limit to be reached.
    "DOCKYARD_PASSWORD_HASH_MEMORY_KIB": "65536",
    "DOCKYARD_PASSWORD_HASH_TIME_COST": "3",
    "DOCKYARD_PASSWORD_HASH_PARALLELISM": "4",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    srv = DockyardServer(
        tmp_path_factory.mktemp("throttle") / "data",
        secure=True,
        env={**COMMON_ENV, "DOCKYARD_TRUSTED_PROXIES": "127.0.0.1/32"},
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def hub(server: DockyardServer) -> Iterator[HubAdmin]:
    admin = HubAdmin(server)
    yield admin
    admin.close()


def address() -> str:
    """A client address of its own (10.x.y.z), so that tests do not share throttle counters."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] or 1}"


def login(server: DockyardServer, creds: tuple[str, str], source: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": source} if source else {}
    return httpx.get(f"{server.url}/v2/token", auth=creds, headers=headers, timeout=60)


def verifications(server: DockyardServer) -> float:
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("dockyard_password_verifications_total")
    )


def burst(count: int, attempt: Callable[[int], httpx.Response]) -> list[httpx.Response]:
    """``count`` attempts released at once from as many threads."""
    gate = threading.Barrier(count)

    def run(i: int) -> httpx.Response:
        gate.wait()
        return attempt(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_a_parallel_burst_gets_at_most_the_limit_of_verifications(server: DockyardServer, hub: HubAdmin) -> None:
    """25 wrong passwords at once from one address: at most the limit is verified (before the fix all 25 were,
    and the right password then still got in). A success clears the pair's count, so the right password is sent
    after the burst, not inside it, where it would legitimately reopen the count wherever it landed."""
    user, password = hub.user("burst")
    source = address()
    before = verifications(server)
    started = time.monotonic()
    answers = burst(25, lambda i: login(server, (user, f"wrong-{i}"), source))
    base = httpx.get(f"{server.url}/v2/", timeout=60)
    assert base.status_code == 401  # the challenge: the server still answers at once
    assert time.monotonic() - started < 60
    statuses = [a.status_code for a in answers]
    assert set(statuses) <= {401, 429}, statuses
    assert sum(s == 401 for s in statuses) <= LIMIT, statuses
    assert all(int(a.headers["retry-after"]) > 0 for a in answers if a.status_code == 429)
    # An attempt the server was too busy to verify (429) gave its count back: one at a time, the rest are verified
    # until the limit is reached (on a quiet machine the burst reached it).
    while sum(s == 401 for s in statuses) < LIMIT:
        statuses.append(login(server, (user, f"wrong-{len(statuses)}"), source).status_code)
        assert statuses[-1] == 401, statuses
    right = login(server, (user, password), source)
    assert right.status_code == 429, right.text  # backing off: not even verified
    assert verifications(server) - before <= LIMIT
    assert verifications(server) - before == sum(s == 401 for s in statuses)
    assert login(server, (user, password), address()).status_code == 200  # from elsewhere it works


def test_failures_from_one_address_do_not_lock_the_account_out_elsewhere(server: DockyardServer) -> None:
    attacker, user = address(), address()
    statuses = [login(server, ("admin", f"guess-{i}"), attacker).status_code for i in range(12)]
    assert statuses == [401] * LIMIT + [429] * (12 - LIMIT)
    backed_off = login(server, ADMIN, attacker)
    assert backed_off.status_code == 429
    assert int(backed_off.headers["retry-after"]) > 0
    # The administrator, from an address with no recent failures, logs in (Basic on /v2, the API, the token).
    assert login(server, ADMIN, user).status_code == 200
    api = httpx.post(
        f"{server.url}/api/v2/auth/token",
        json={"identifier": ADMIN[0], "secret": ADMIN[1]},
        headers={"X-Forwarded-For": address()},
        timeout=60,
    )
    assert api.status_code == 200, api.text


def test_the_right_password_clears_the_pair(server: DockyardServer, hub: HubAdmin) -> None:
    user, password = hub.user("typo")
    source = address()
    assert [login(server, (user, f"typo-{i}"), source).status_code for i in range(LIMIT - 1)] == [401] * (LIMIT - 1)
    assert login(server, (user, password), source).status_code == 200
    assert [login(server, (user, f"again-{i}"), source).status_code for i in range(LIMIT - 1)] == [401] * (LIMIT - 1)


def test_tokens_and_robot_secrets_still_work_while_the_password_backs_off(
    server: DockyardServer, hub: HubAdmin
) -> None:
    user, password = hub.user("tok")
    token = pat(server, user, password, "repo:read")["token"]
    org = hub.org(user)
    robot = hub.robot(org, {})
    source = address()
    statuses = [login(server, (user, f"wrong-{i}"), source).status_code for i in range(LIMIT + 2)]
    assert statuses[-1] == 429
    assert login(server, (user, token), source).status_code == 200
    api = httpx.post(
        f"{server.url}/api/v2/auth/token",
        json={"identifier": user, "secret": token},
        headers={"X-Forwarded-For": source},
        timeout=60,
    )
    assert api.status_code == 200, api.text
    # Robot secrets (random, 256 bits) are not counted: wrong ones never back the robot off.
    assert {login(server, (robot.name, f"dy_rbt_wrong{i}"), source).status_code for i in range(LIMIT + 3)} == {401}
    assert login(server, (robot.name, robot.secret), source).status_code == 200
    assert login(server, (user, token), address()).status_code == 200


def median_seconds(*attempts: Callable[[int], httpx.Response], tries: int = 15) -> list[float]:
    """The median time of each of ``attempts`` (each must be refused), taken in turns — one of each, then again —
    so that a change of the machine's load while they run weighs on all of them alike."""
    times: list[list[float]] = [[] for _ in attempts]
    for i in range(tries):
        for attempt, taken in zip(attempts, times, strict=True):
            started = time.perf_counter()
            response = attempt(i)
            taken.append(time.perf_counter() - started)
            assert response.status_code == 401, response.text
    return [statistics.median(taken) for taken in times]


def test_an_unknown_robot_costs_what_a_known_one_does(server: DockyardServer, hub: HubAdmin) -> None:
    owner, _ = hub.user("rbo")
    org = hub.org(owner)
    robot = hub.robot(org, {})
    known, unknown = median_seconds(
        lambda i: login(server, (robot.name, f"dy_rbt_wrong{i}"), address()),
        lambda i: login(server, (f"{org}+nobody{i}", f"dy_rbt_wrong{i}"), address()),
    )
    assert max(known, unknown) < 3 * min(known, unknown), (known, unknown)


def test_an_unknown_user_costs_what_a_known_one_does(server: DockyardServer, hub: HubAdmin) -> None:
    user, _ = hub.user("known")
    known, unknown = median_seconds(
        lambda i: login(server, (user, f"wrong-{i}"), address()),
        lambda i: login(server, (f"nobody{uuid.uuid4().hex[:8]}", f"wrong-{i}"), address()),
    )
    assert max(known, unknown) < 3 * min(known, unknown), (known, unknown)


@pytest.fixture(scope="module")
def untrusting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    """No trusted proxies, one worker, one password check at a time and no queue."""
    srv = DockyardServer(
        tmp_path_factory.mktemp("untrusting") / "data",
        secure=True,
        env={
            **COMMON_ENV,
            "DOCKYARD_WORKERS": "1",
            "DOCKYARD_MAX_CONCURRENT_PASSWORD_CHECKS": "1",
            "DOCKYARD_PASSWORD_CHECK_WAIT_SECONDS": "0",
        },
    )
    srv.start()
    yield srv
    srv.stop()


def source_seen(server: DockyardServer, forwarded_for: str) -> str:
    """The source address the server records (in the audit log) for a failed login sent with this header."""
    hub = HubAdmin(server)
    try:
        user, _ = hub.user("seen")
        assert login(server, (user, "wrong-password"), forwarded_for).status_code == 401
        logs = hub.client.get(f"/api/v2/auditlogs/{user}", params={"action": "login.failure"}).json()["logs"]
        return str(logs[0]["source_ip"])
    finally:
        hub.close()


def test_forwarded_for_is_honoured_from_a_trusted_proxy_only(
    server: DockyardServer, untrusting: DockyardServer
) -> None:
    # The right-most address the trusted proxy did not add: a client cannot choose it by sending its own header.
    assert source_seen(server, "203.0.113.9, 10.20.30.40") == "10.20.30.40"
    assert source_seen(untrusting, "10.20.30.40") == "127.0.0.1"


def test_forwarded_for_from_an_untrusted_peer_does_not_escape_the_backoff(untrusting: DockyardServer) -> None:
    # Each attempt claims another address; the server sees 127.0.0.1 every time, so the pair backs off.
    statuses = [login(untrusting, ("admin", f"guess-{i}"), address()).status_code for i in range(LIMIT)]
    assert statuses == [401] * LIMIT
    assert login(untrusting, ADMIN, address()).status_code == 429


def test_concurrent_password_checks_are_capped(untrusting: DockyardServer) -> None:
    before = verifications(untrusting)
    answers = burst(16, lambda i: login(untrusting, (f"spray{uuid.uuid4().hex[:8]}", f"wrong-{i}")))
    statuses = [a.status_code for a in answers]
    assert set(statuses) == {401, 429}, statuses
    assert {a.headers["retry-after"] for a in answers if a.status_code == 429} == {"1"}
    assert verifications(untrusting) - before == statuses.count(401)


def test_changing_the_password_is_no_unthrottled_guessing_oracle(server: DockyardServer, hub: HubAdmin) -> None:
    """A stolen API session must not guess the current password through ``PUT /users/{u}/password``: each guess
    is counted and backs off like a sign-in, and every one costs a counted verification."""
    user, password = hub.user("oracle")
    source = address()
    api = httpx.post(
        f"{server.url}/api/v2/auth/token",
        json={"identifier": user, "secret": password},
        headers={"X-Forwarded-For": source},
        timeout=60,
    )
    assert api.status_code == 200, api.text
    headers = {"Authorization": f"Bearer {api.json()['access_token']}", "X-Forwarded-For": source}
    before = verifications(server)

    def guess(i: int) -> httpx.Response:
        body = {"current_password": f"guess-{i}", "new_password": f"new-{uuid.uuid4().hex}"}
        return httpx.put(f"{server.url}/api/v2/users/{user}/password", json=body, headers=headers, timeout=60)

    statuses = [a.status_code for a in burst(20, guess)]
    assert set(statuses) <= {403, 429}, statuses
    assert sum(s == 403 for s in statuses) <= LIMIT, statuses
    # A guess the server was too busy to verify (429) gave its attempt back: one at a time, the rest are verified
    # until the limit is reached.
    while sum(s == 403 for s in statuses) < LIMIT:
        statuses.append(guess(len(statuses)).status_code)
        assert statuses[-1] == 403, statuses
    assert verifications(server) - before == sum(s == 403 for s in statuses)
    # Backing off, even the right current password is refused from that address; the password is unchanged.
    right = httpx.put(
        f"{server.url}/api/v2/users/{user}/password",
        json={"current_password": password, "new_password": f"new-{uuid.uuid4().hex}"},
        headers=headers,
        timeout=60,
    )
    assert right.status_code == 429, right.text
    assert login(server, (user, password), address()).status_code == 200
