"""Docker Hub's pull rate limits (issue 18, item 4) on one server: a manifest GET counts (a HEAD never does),
anonymous callers by their address as the trusted proxy reports it, accounts by account; Docker Hub's headers
exactly; over the limit 429 ``TOOMANYREQUESTS`` with ``Retry-After``, and allowed again in the next window; an
organization's override lifts its members' limit."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from tests.support.checks import wait_for
from tests.support.hub_accounts import SIGN_IN_OFTEN
from tests.support.hub_api import ANY_MANIFEST, People, create_repository, push_platform_image
from tests.support.oci import error_codes

WINDOW = 12
ANONYMOUS = 100
AUTHENTICATED = 5
ORG = "pullers"
T = TypeVar("T")


@pytest.fixture(scope="module")
def secure_server_env() -> dict[str, str]:
    return {
        **SIGN_IN_OFTEN,
        "DOCKYARD_RATE_LIMIT_ANONYMOUS": str(ANONYMOUS),
        "DOCKYARD_RATE_LIMIT_AUTHENTICATED": str(AUTHENTICATED),
        "DOCKYARD_RATE_LIMIT_WINDOW_SECONDS": str(WINDOW),
        "DOCKYARD_RATE_LIMIT_ORGANIZATIONS": f"{ORG}=0",
        "DOCKYARD_RATE_LIMIT_FLUSH_SECONDS": "0.1",
        "DOCKYARD_TRUSTED_PROXIES": "127.0.0.1",
    }


def _public_image(people: People) -> str:
    owner = people.user()
    name = f"pulled-{uuid.uuid4().hex[:8]}"
    create_repository(owner, name, is_private=False)
    push_platform_image(owner.registry, f"{owner.name}/{name}", "v1")
    return f"{owner.name}/{name}"


def in_one_window(attempt: Callable[[], T], tries: int = 3) -> T:
    """Run ``attempt`` from the start of a fresh window; on a failed assertion, try again only if the attempt ran
    past its window (on a loaded machine its requests may take longer than a window)."""
    for _ in range(tries):
        time.sleep(WINDOW - time.time() % WINDOW + 0.05)
        window = time.time() // WINDOW
        try:
            return attempt()
        except AssertionError:
            if time.time() // WINDOW == window:
                raise
    raise AssertionError(f"{tries} attempts each outlasted their {WINDOW} s window")


def _get(client: httpx.Client, repo: str, address: str | None = None, method: str = "GET") -> httpx.Response:
    headers = {"Accept": ANY_MANIFEST}
    if address is not None:
        headers["X-Forwarded-For"] = address
    return client.request(method, f"/v2/{repo}/manifests/v1", headers=headers)


def test_anonymous_limit_headers_head_and_the_next_window(people: People) -> None:
    repo = _public_image(people)

    def up_to_the_limit() -> tuple[str, int]:
        address = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
        first = _get(people.anonymous, repo, address)
        assert first.status_code == 200, first.text
        assert first.headers["ratelimit-limit"] == f"{ANONYMOUS};w={WINDOW}"
        assert first.headers["ratelimit-remaining"] == f"{ANONYMOUS - 1};w={WINDOW}"
        assert first.headers["docker-ratelimit-source"] == address  # the trusted proxy's client, not the peer
        # HEAD shows the count and never takes from it.
        for _ in range(3):
            head = _get(people.anonymous, repo, address, "HEAD")
            assert head.status_code == 200
            assert head.headers["ratelimit-remaining"] == f"{ANONYMOUS - 1};w={WINDOW}"
        for n in range(2, ANONYMOUS + 1):
            response = _get(people.anonymous, repo, address)
            assert response.status_code == 200, (n, response.text)
            assert response.headers["ratelimit-remaining"] == f"{ANONYMOUS - n};w={WINDOW}"
        refused = _get(people.anonymous, repo, address)  # the 101st
        assert refused.status_code == 429, refused.text
        assert error_codes(refused) == ["TOOMANYREQUESTS"]
        assert "pull rate limit" in refused.json()["errors"][0]["message"]
        retry = int(refused.headers["retry-after"])
        assert 1 <= retry <= WINDOW
        assert refused.headers["ratelimit-remaining"] == f"0;w={WINDOW}"
        assert _get(people.anonymous, repo, address, "HEAD").status_code == 200  # HEAD is not refused either
        # Another address has its own count.
        other = _get(people.anonymous, repo, "192.0.2.77")
        assert other.headers["ratelimit-remaining"] == f"{ANONYMOUS - 1};w={WINDOW}"
        return address, retry

    address, retry = in_one_window(up_to_the_limit)
    time.sleep(retry + 0.1)
    again = _get(people.anonymous, repo, address)
    assert again.status_code == 200, again.text
    assert again.headers["ratelimit-remaining"] == f"{ANONYMOUS - 1};w={WINDOW}"


def test_accounts_are_counted_by_account_and_an_organization_lifts_the_limit(people: People) -> None:
    repo = _public_image(people)
    alice = people.user()

    def up_to_the_limit() -> None:
        for n in range(1, AUTHENTICATED + 1):
            response = _get(alice.registry, repo)
            assert response.status_code == 200, response.text
            assert response.headers["ratelimit-limit"] == f"{AUTHENTICATED};w={WINDOW}"
            assert response.headers["ratelimit-remaining"] == f"{AUTHENTICATED - n};w={WINDOW}"
            assert response.headers["docker-ratelimit-source"] == alice.name
        assert _get(alice.registry, repo).status_code == 429
        # The same account from another address is the same count; anonymous pulls from that address are not.
        assert _get(alice.registry, repo, "203.0.113.9").status_code == 429
        assert _get(people.anonymous, repo, "203.0.113.9").status_code == 200

    in_one_window(up_to_the_limit)

    # A member of an organization with an unlimited override pulls without a limit (and without headers) once
    # the memberships are re-read (every 30 flushes: 3 s here).
    bob = people.user()
    response = bob.api.post("/api/v2/orgs", json={"orgname": ORG})
    assert response.status_code == 201, response.text

    def unlimited() -> bool:
        # Until the override is read, bob is counted like anyone (a loaded machine may let him reach the limit).
        response = _get(bob.registry, repo)
        assert response.status_code in (200, 429), response.text
        return response.status_code == 200 and "ratelimit-limit" not in response.headers

    wait_for(unlimited, timeout=15, what="the organization's override")
    for _ in range(AUTHENTICATED * 2):
        assert _get(bob.registry, repo).status_code == 200
