"""Namespaces belong to accounts: nobody but a site administrator pushes into a namespace without an account, and
nobody claims a name that a namespace (an administrator's push) or a deleted account's reservation holds."""

from __future__ import annotations

import uuid

import httpx

from tests.security.rows_oci import Call, Expect
from tests.security.world import (
    ANON,
    DISABLED,
    OAT,
    OWNER,
    PAT_EXPIRED,
    PAT_READ,
    PAT_REVOKED,
    PRINCIPALS,
    READER,
    ROBOT,
    STRANGER,
    TEAM_ADMIN,
    WRITER,
    World,
)
from tests.support.oci import push_image

_made: dict[tuple[int, str], str] = {}  # (id of the world, what) → a namespace made once per world


def _once(world: World, what: str) -> str:
    key = (id(world), what)
    if key not in _made:
        name = f"{what}{uuid.uuid4().hex[:8]}"
        if what == "pushed":  # an administrator's push: the namespace becomes the administrator's organization
            with world.admin_v2() as client:
                push_image(client, f"{name}/app", "v1")
        elif what == "deleted":  # an organization deleted a moment ago: its name is reserved
            world.admin_api("POST", "/api/v2/orgs", json={"orgname": name, "owner": "admin"})
            world.admin_api("DELETE", f"/api/v2/orgs/{name}")
        _made[key] = name
    return _made[key]


def _push_nowhere(world: World, principal: str, _: str) -> httpx.Response:
    repo = f"nowhere{uuid.uuid4().hex[:8]}/app"
    return world.v2(principal, "POST", f"/v2/{repo}/blobs/uploads/", f"repository:{repo}:pull,push")


def _push_reserved(world: World, principal: str, _: str) -> httpx.Response:
    repo = f"{_once(world, 'deleted')}/app"
    return world.v2(principal, "POST", f"/v2/{repo}/blobs/uploads/", f"repository:{repo}:pull,push")


def _create_org(what: str) -> Call:
    def call(world: World, principal: str, _: str) -> httpx.Response:
        return world.api(principal, "POST", "/api/v2/orgs", json={"orgname": _once(world, what)})

    return call


USERS = (OWNER, READER, WRITER, TEAM_ADMIN, STRANGER)
DEAD_401 = {ANON: 401, PAT_EXPIRED: 401, PAT_REVOKED: 401, DISABLED: 401}


def _all(statuses: dict[str, int]) -> Expect:
    assert set(statuses) == set(PRINCIPALS)
    return statuses


ROWS: dict[str, tuple[Call, Expect]] = {
    "push into a namespace with no account": (
        _push_nowhere,
        _all({**DEAD_401, **dict.fromkeys((*USERS, ROBOT, OAT, PAT_READ), 403)}),
    ),
    "push into the namespace of an organization deleted within the grace period": (
        _push_reserved,
        _all({**DEAD_401, **dict.fromkeys((*USERS, ROBOT, OAT, PAT_READ), 403)}),
    ),
    # Robots and access tokens (personal or organization) may not create organizations (403); users find the name
    # taken (409).
    "create an organization named like a namespace an administrator pushed into": (
        _create_org("pushed"),
        _all({**DEAD_401, **dict.fromkeys(USERS, 409), ROBOT: 403, OAT: 403, PAT_READ: 403}),
    ),
    "create an organization with the name of one deleted within the grace period": (
        _create_org("deleted"),
        _all({**DEAD_401, **dict.fromkeys(USERS, 409), ROBOT: 403, OAT: 403, PAT_READ: 403}),
    ),
}
