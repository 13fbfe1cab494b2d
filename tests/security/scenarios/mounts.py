"""Cross-repository blob mounts (``POST /v2/<target>/blobs/uploads/?mount=<digest>&from=<source>``) by principals
whose rights are narrower than their account's: a personal access token limited to some repositories, a
read-only token, a robot, a team member who only reads. The mount needs pull on ``from`` *as this credential*;
without it the answer is a plain upload session (202) and the blob stays out of the target.

Clients ask ``/v2/token`` for ``repository:<target>:pull,push`` and ``repository:<source>:pull`` before a mount
(docker, containers/image); the Bearer rows do the same. The extra principals are built once per world."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx

from tests.security.rows_oci import Call, Expect
from tests.security.world import PAT_READ, READER, World
from tests.support.hub import pat
from tests.support.oci import push_blob

PAT_LISTED = "pat_write_listed_public_repo_only"  # owner's repo:write token limited to the public repository
PAT_LISTED_BOTH = "pat_write_listed_both_repos"  # owner's repo:write token limited to the public and private ones
ROBOT_PUSH = "robot_push_public_only"  # robot with write on the public repository, nothing on the private one
ROBOT_BOTH = "robot_push_public_pull_private"  # robot with write on the public one and read on the private one


@dataclass
class Extra:
    creds: dict[str, tuple[str, str]]


_EXTRAS: dict[int, Extra] = {}


def extra(world: World) -> Extra:
    """The principals these rows add, made on first use (the shared world's PRINCIPALS stay as they are)."""
    found = _EXTRAS.get(id(world))
    if found is not None:
        return found
    owner, password = world.creds["owner"]
    listed = pat(world.server, owner, password, "repo:write", repositories=[world.public_repo])["token"]
    both = pat(world.server, owner, password, "repo:write", repositories=[world.public_repo, world.repo])["token"]
    push_only = world.hub.robot(world.org, {world.public_repo: "write"})
    push_pull = world.hub.robot(world.org, {world.public_repo: "write", world.repo: "read"})
    made = Extra(
        {
            PAT_LISTED: (owner, listed),
            PAT_LISTED_BOTH: (owner, both),
            ROBOT_PUSH: (push_only.name, push_only.secret),
            ROBOT_BOTH: (push_pull.name, push_pull.secret),
        }
    )
    _EXTRAS[id(world)] = made
    return made


def creds(world: World, principal: str) -> tuple[str, str]:
    return world.creds[principal] if principal in world.creds else extra(world).creds[principal]


def plan(world: World, principal: str, readable: bool) -> tuple[str, str]:
    """(target, source) for ``principal``: a target it may push to, and a source it may (``readable``) or may not
    pull. The team reader pushes into its own namespace; it reads the org's private repository and not the
    owner's own private one."""
    if principal == READER:
        target = f"{world.users[READER]}/copy{uuid.uuid4().hex[:8]}"
        return target, (world.repo if readable else f"{world.users['owner']}/mine")
    return world.public_repo, world.repo


def fresh_blob(world: World, repo: str) -> str:
    """A blob pushed into ``repo`` just now (by the administrator), so no other repository has it."""
    with world.admin_v2() as client:
        return push_blob(client, repo, f"mount-{uuid.uuid4().hex}".encode())


def mount(world: World, principal: str, *, readable: bool, bearer: bool = True) -> tuple[httpx.Response, str, str]:
    target, source = plan(world, principal, readable)
    digest = fresh_blob(world, source)
    path = f"/v2/{target}/blobs/uploads/"
    params = {"mount": digest, "from": source}
    with world.client() as client:
        if not bearer:
            return client.post(path, params=params, auth=creds(world, principal)), target, digest
        token = client.get(
            "/v2/token",
            params=[("scope", f"repository:{target}:pull,push"), ("scope", f"repository:{source}:pull")],
            auth=creds(world, principal),
        )
        if token.status_code != 200:
            return token, target, digest
        headers = {"Authorization": f"Bearer {token.json()['token']}"}
        return client.post(path, params=params, headers=headers), target, digest


def mount_unreadable(world: World, principal: str, _name: str) -> httpx.Response:
    return mount(world, principal, readable=False)[0]


def mount_unreadable_basic(world: World, principal: str, _name: str) -> httpx.Response:
    return mount(world, principal, readable=False, bearer=False)[0]


def mount_readable(world: World, principal: str, _name: str) -> httpx.Response:
    return mount(world, principal, readable=True)[0]


def target_after_refused_mount(world: World, principal: str, _name: str) -> httpx.Response:
    """The administrator's HEAD of the blob in the target after the principal's refused mount."""
    response, target, digest = mount(world, principal, readable=False)
    assert response.status_code == 202, (response.status_code, response.text[:200])
    with world.admin_v2() as client:
        return client.head(f"/v2/{target}/blobs/{digest}")


REFUSED: Expect = {PAT_LISTED: 202, ROBOT_PUSH: 202, READER: 202, PAT_READ: 403}

ROWS: dict[str, tuple[Call, Expect]] = {
    "mount (Bearer) from a repository the credential may not pull: a plain upload session": (
        mount_unreadable,
        REFUSED,
    ),
    "mount (Basic) from a repository the credential may not pull: a plain upload session": (
        mount_unreadable_basic,
        REFUSED,
    ),
    "mount (Bearer) from a repository the credential may pull: mounted": (
        mount_readable,
        {PAT_LISTED_BOTH: 201, ROBOT_BOTH: 201, READER: 201, PAT_READ: 403},
    ),
    "after a refused mount (Bearer) the blob is not in the target": (
        target_after_refused_mount,
        {PAT_LISTED: 404, ROBOT_PUSH: 404, READER: 404},
    ),
}
