"""Matrix rows for every ``/v2`` route: how to call it as a principal, and what each principal must get."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.security.world import (
    ANON,
    DEAD,
    OAT,
    OWNER,
    PAT_READ,
    PRINCIPALS,
    READER,
    ROBOT,
    STRANGER,
    TEAM_ADMIN,
    WRITER,
    World,
)

Expect = dict[str, int]  # principal → the one status it must get
Call = Callable[[World, str, str], httpx.Response]  # (world, principal, method) → response

# What each live principal holds on the private repository: 0 none, 1 read, 2 write, 3 admin.
LEVEL = {OWNER: 3, READER: 1, WRITER: 2, TEAM_ADMIN: 3, STRANGER: 0, ROBOT: 1, OAT: 1, PAT_READ: 1}
PULL, PUSH, DELETE = 1, 2, 3
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def repo_rule(need: int, ok: int) -> Expect:
    """Private-repository route: anonymous and dead credentials 401, too low a level 403 (``/v2`` decides on the
    name before it looks anything up, so a stranger's 403 is also what a missing repository answers), else ``ok``."""
    out: Expect = {}
    for principal in PRINCIPALS:
        if principal == ANON or principal in DEAD:
            out[principal] = 401
        else:
            out[principal] = ok if LEVEL[principal] >= need else 403
    return out


def signed_in_rule(ok: int, anonymous: int = 401) -> Expect:
    return {p: (anonymous if p == ANON else 401 if p in DEAD else ok) for p in PRINCIPALS}


def scope(world: World, actions: str) -> str:
    return f"repository:{world.repo}:{actions}"


def base(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, "/v2/", None)


def base_noslash(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, "/v2", None)


def catalog(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, "/v2/_catalog", "registry:catalog:*")


def token_get(world: World, principal: str, method: str) -> httpx.Response:
    with world.client() as client:
        auth = None if principal == ANON else world.creds[principal]
        return client.request(method, "/v2/token", params={"scope": scope(world, "pull")}, auth=auth)


def token_post(world: World, principal: str, method: str) -> httpx.Response:
    name, secret = ("", "") if principal == ANON else world.creds[principal]
    form = {
        "grant_type": "password",
        "client_id": "matrix",
        "username": name,
        "password": secret,
        "scope": scope(world, "pull"),
    }
    with world.client() as client:
        return client.post("/v2/token", data=form)


def tags(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, f"/v2/{world.repo}/tags/list", scope(world, "pull"))


def referrers(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, f"/v2/{world.repo}/referrers/{world.digest}", scope(world, "pull"))


def manifest_get(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, f"/v2/{world.repo}/manifests/latest", scope(world, "pull"))


def manifest_put(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(
        principal,
        "PUT",
        f"/v2/{world.repo}/manifests/m-{principal}",
        scope(world, "pull,push"),
        content=world.manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )


def manifest_delete(world: World, principal: str, method: str) -> httpx.Response:
    _, digest = world.fresh_image()
    return world.v2(principal, "DELETE", f"/v2/{world.repo}/manifests/{digest}", scope(world, "delete"))


def blob_get(world: World, principal: str, method: str) -> httpx.Response:
    return world.v2(principal, method, f"/v2/{world.repo}/blobs/{world.blob}", scope(world, "pull"))


def blob_delete(world: World, principal: str, method: str) -> httpx.Response:
    digest = world.fresh_blob()
    return world.v2(principal, "DELETE", f"/v2/{world.repo}/blobs/{digest}", scope(world, "delete"))


def upload_start(slash: bool) -> Call:
    def call(world: World, principal: str, method: str) -> httpx.Response:
        path = f"/v2/{world.repo}/blobs/uploads" + ("/" if slash else "")
        return world.v2(principal, "POST", path, scope(world, "pull,push"))

    return call


EMPTY_DIGEST = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def upload(method_name: str) -> Call:
    def call(world: World, principal: str, method: str) -> httpx.Response:
        upload_id = world.fresh_upload()
        path = f"/v2/{world.repo}/blobs/uploads/{upload_id}"
        kwargs: dict[str, object] = {}
        if method_name == "PUT":
            kwargs["params"] = {"digest": EMPTY_DIGEST}
        if method_name == "PATCH":
            kwargs["content"] = b"chunk"
        return world.v2(principal, method_name, path, scope(world, "pull,push"), **kwargs)

    return call


N = "/v2/{name:path}"
ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {
    ("GET", "/v2/"): (base, signed_in_rule(200)),
    ("GET", "/v2"): (base_noslash, signed_in_rule(200)),
    ("GET", "/v2/_catalog"): (catalog, signed_in_rule(200)),
    ("GET", "/v2/token"): (token_get, signed_in_rule(200, anonymous=200)),
    ("POST", "/v2/token"): (token_post, signed_in_rule(200)),
    ("GET", f"{N}/tags/list"): (tags, repo_rule(PULL, 200)),
    ("GET", f"{N}/referrers/{{digest}}"): (referrers, repo_rule(PULL, 200)),
    ("GET", f"{N}/manifests/{{reference}}"): (manifest_get, repo_rule(PULL, 200)),
    ("PUT", f"{N}/manifests/{{reference}}"): (manifest_put, repo_rule(PUSH, 201)),
    ("DELETE", f"{N}/manifests/{{reference}}"): (manifest_delete, repo_rule(DELETE, 202)),
    ("POST", f"{N}/blobs/uploads/"): (upload_start(True), repo_rule(PUSH, 202)),
    ("POST", f"{N}/blobs/uploads"): (upload_start(False), repo_rule(PUSH, 202)),
    ("GET", f"{N}/blobs/uploads/{{upload_id}}"): (upload("GET"), repo_rule(PUSH, 204)),
    ("PATCH", f"{N}/blobs/uploads/{{upload_id}}"): (upload("PATCH"), repo_rule(PUSH, 202)),
    ("PUT", f"{N}/blobs/uploads/{{upload_id}}"): (upload("PUT"), repo_rule(PUSH, 201)),
    ("DELETE", f"{N}/blobs/uploads/{{upload_id}}"): (upload("DELETE"), repo_rule(PUSH, 204)),
    ("GET", f"{N}/blobs/{{digest}}"): (blob_get, repo_rule(PULL, 200)),
    ("DELETE", f"{N}/blobs/{{digest}}"): (blob_delete, repo_rule(DELETE, 202)),
}
# Starlette answers HEAD on every GET route: the same rules apply.
for (verb, path), row in list(ROWS.items()):
    if verb == "GET":
        ROWS[("HEAD", path)] = row
