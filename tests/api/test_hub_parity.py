"""Docker Hub API parity: every operation of Hub's published document (``tests/api/data/hub_api.json``, with its
source revision) is served under ``/api/v2`` with the same method and path shape, and its response bodies
validate against Hub's own schemas (extra Dockyard fields allowed); ``docs/api.md``'s compatibility table is the
one generated from the same data.

An operation another issue is to serve is marked ``pending`` in ``tests/api/data/hub_parity.json``: its cases are
``xfail(strict=True)``, so they fail the day it is served until the marker goes.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from tests.support.checks import unique
from tests.support.hub_accounts import PASSWORD, Accounts, accounts, ok
from tests.support.hub_parity import (
    BEGIN,
    DOC,
    END,
    Operation,
    hub_document,
    operations,
    page_with_table,
    parity_notes,
    schema_errors,
    served_shapes,
)
from tests.support.oci import push_image

OPERATIONS = operations()


def _param(op: Operation) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=op.pending)] if op.pending else []
    return pytest.param(op, id=op.key, marks=marks)


# The data


def test_data_names_its_source_and_every_operation_once() -> None:
    source = hub_document()["source"]
    assert re.fullmatch(r"[0-9a-f]{40}", source["commit"])
    assert source["repository"] == "docker/docs"
    assert source["path"] == "content/reference/api/hub/latest.yaml"
    keys = [op.key for op in OPERATIONS]
    assert len(keys) == len(set(keys)) == 54
    notes = parity_notes()
    assert set(notes["operations"]) <= set(keys), set(notes["operations"]) - set(keys)
    assert set(notes["errata"]) <= set(keys)
    assert set(notes["component_errata"]) <= set(hub_document()["components"]["schemas"])
    for errata in notes["errata"].values():
        assert all(item["reason"] for item in errata.values())
    pending = sorted(op.key for op in OPERATIONS if op.pending)
    # Tag immutability (issue 18) serves Hub's immutable-tags operations: none of them is pending any more.
    assert [key for key in pending if key.endswith(("immutabletags", "immutabletags/verify"))] == []


def test_docs_table_is_generated_from_the_data() -> None:
    page = DOC.read_text()
    assert BEGIN in page
    assert END in page
    assert page == page_with_table(page), "docs/api.md is out of date: run `make api-docs`"


# Served with Hub's method and path shape


@pytest.mark.parametrize("op", [_param(op) for op in OPERATIONS])
def test_operation_is_served(op: Operation) -> None:
    assert op.shape in served_shapes(), f"{op.method} /api{op.path} is not served"


# Response bodies against Hub's schemas


@dataclass
class World:
    """An organization with an owner, a member, a team, a repository with a pushed tag, the owner's PAT, and the
    organization's SCIM token with a user it provisioned."""

    hub: Accounts
    owner: str
    member: str
    org: str
    team: str
    repo: str
    tag: str
    pat_uuid: str
    scim_token: str
    scim_user: str

    @property
    def as_owner(self) -> httpx.Client:
        return self.hub.as_user(self.owner)

    @property
    def as_idp(self) -> httpx.Client:
        """The organization's identity provider: its SCIM token as a bearer token."""
        return self.hub.client(bearer=self.scim_token)


@pytest.fixture(scope="module")
def world(secure_server: Any) -> Iterator[World]:
    with accounts(secure_server) as hub:
        owner, member = hub.user("owner"), hub.user("member")
        org = hub.org(owner, member)
        client = hub.as_user(owner)
        team = unique("team")
        ok(client.post(f"/api/v2/orgs/{org}/groups", json={"name": team}), 201)
        ok(client.post(f"/api/v2/orgs/{org}/groups/{team}/members", json={"member": member}))
        repo = unique("repo")
        push_image(client, f"{org}/{repo}", "v1")
        pat = hub.pat(owner, "repo:read")
        scim_token = ok(client.post(f"/api/v2/orgs/{org}/scim-token"), 201)["token"]
        scim_user = ok(hub.client(bearer=scim_token).post(SCIM + "/Users", json=_scim_user()), 201)["id"]
        yield World(hub, owner, member, org, team, repo, "v1", pat["uuid"], scim_token, scim_user)


Call = Callable[[World], httpx.Response]
NS_REPO = "/api/v2/namespaces/{org}/repositories/{repo}"
SCIM = "/api/v2/scim/2.0"


def _scim_user(**extra: Any) -> dict[str, Any]:
    user_name = f"{unique('idp')}@example.com"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": user_name, "primary": True}],
        **extra,
    }


def _get(path: str) -> Call:
    return lambda w: w.as_owner.get(path.format(**vars(w)))


def _second_factor_login(w: World) -> httpx.Response:
    """A fresh user turns two-factor sign-in on, then logs in with the password and a TOTP code."""
    name = w.hub.user("tfa")
    me = w.hub.client(bearer=w.hub.api_token(name))
    secret = ok(me.post(f"/api/v2/users/{name}/2fa/enrolment"), 201)["secret"]
    ok(me.post(f"/api/v2/users/{name}/2fa/confirm", json={"code": pyotp.TOTP(secret).at(time.time() - 30)}))
    login = w.hub.anon.post("/api/v2/users/login", json={"username": name, "password": PASSWORD})
    assert login.status_code == 401, login.text
    token = login.json()["login_2fa_token"]
    return w.hub.anon.post("/api/v2/users/2fa-login", json={"login_2fa_token": token, "code": pyotp.TOTP(secret).now()})


# How each operation is called, and with which success status; operations without a case here fail below.
CASES: dict[str, tuple[Call, int]] = {
    "POST /v2/users/login": (
        lambda w: w.hub.anon.post("/api/v2/users/login", json={"username": w.owner, "password": PASSWORD}),
        200,
    ),
    "POST /v2/users/2fa-login": (_second_factor_login, 200),
    "POST /v2/auth/token": (
        lambda w: w.hub.anon.post("/api/v2/auth/token", json={"identifier": w.owner, "secret": PASSWORD}),
        200,
    ),
    "POST /v2/access-tokens": (
        lambda w: w.as_owner.post("/api/v2/access-tokens", json={"token_label": unique("l"), "scopes": ["repo:read"]}),
        201,
    ),
    "GET /v2/access-tokens": (_get("/api/v2/access-tokens"), 200),
    "PATCH /v2/access-tokens/{uuid}": (
        lambda w: w.as_owner.patch(f"/api/v2/access-tokens/{w.pat_uuid}", json={"token_label": "renamed"}),
        200,
    ),
    "GET /v2/access-tokens/{uuid}": (_get("/api/v2/access-tokens/{pat_uuid}"), 200),
    "DELETE /v2/access-tokens/{uuid}": (
        lambda w: w.as_owner.delete(f"/api/v2/access-tokens/{w.hub.pat(w.owner, 'repo:read')['uuid']}"),
        204,
    ),
    "GET /v2/auditlogs/{account}/actions": (_get("/api/v2/auditlogs/{org}/actions"), 200),
    "GET /v2/auditlogs/{account}": (_get("/api/v2/auditlogs/{org}"), 200),
    "GET /v2/orgs/{name}/settings": (_get("/api/v2/orgs/{org}/settings"), 200),
    "PUT /v2/orgs/{name}/settings": (
        lambda w: w.as_owner.put(
            f"/api/v2/orgs/{w.org}/settings",
            json={
                "restricted_images": {
                    "enabled": False,
                    "allow_official_images": True,
                    "allow_verified_publishers": True,
                }
            },
        ),
        200,
    ),
    "POST /v2/orgs/{name}/access-tokens": (lambda w: _new_org_token(w), 201),
    "GET /v2/orgs/{name}/access-tokens": (_get("/api/v2/orgs/{org}/access-tokens"), 200),
    "GET /v2/orgs/{org_name}/access-tokens/{access_token_id}": (
        lambda w: w.as_owner.get(f"/api/v2/orgs/{w.org}/access-tokens/{_new_org_token(w).json()['id']}"),
        200,
    ),
    "PATCH /v2/orgs/{org_name}/access-tokens/{access_token_id}": (
        lambda w: w.as_owner.patch(
            f"/api/v2/orgs/{w.org}/access-tokens/{_new_org_token(w).json()['id']}", json={"is_active": False}
        ),
        200,
    ),
    "DELETE /v2/orgs/{org_name}/access-tokens/{access_token_id}": (
        lambda w: w.as_owner.delete(f"/api/v2/orgs/{w.org}/access-tokens/{_new_org_token(w).json()['id']}"),
        204,
    ),
    "GET /v2/namespaces/{namespace}/repositories/{repository}/tags": (_get(NS_REPO + "/tags"), 200),
    "HEAD /v2/namespaces/{namespace}/repositories/{repository}/tags": (
        lambda w: w.as_owner.head(NS_REPO.format(**vars(w)) + "/tags"),
        200,
    ),
    "GET /v2/namespaces/{namespace}/repositories/{repository}/tags/{tag}": (_get(NS_REPO + "/tags/{tag}"), 200),
    "HEAD /v2/namespaces/{namespace}/repositories/{repository}/tags/{tag}": (
        lambda w: w.as_owner.head(NS_REPO.format(**vars(w)) + f"/tags/{w.tag}"),
        200,
    ),
    "POST /v2/repositories/{namespace}/{repository}/groups": (
        lambda w: w.as_owner.post(
            f"/api/v2/repositories/{w.org}/{w.repo}/groups",
            json={"group_id": ok(w.as_owner.get(f"/api/v2/orgs/{w.org}/groups/{w.team}"))["id"], "permission": "write"},
        ),
        200,
    ),
    "GET /v2/namespaces/{namespace}/repositories": (_get("/api/v2/namespaces/{org}/repositories"), 200),
    "POST /v2/namespaces/{namespace}/repositories": (
        lambda w: w.as_owner.post(
            f"/api/v2/namespaces/{w.org}/repositories", json={"name": unique("repo"), "namespace": w.org}
        ),
        201,
    ),
    "GET /v2/namespaces/{namespace}/repositories/{repository}": (_get(NS_REPO), 200),
    "HEAD /v2/namespaces/{namespace}/repositories/{repository}": (
        lambda w: w.as_owner.head(NS_REPO.format(**vars(w))),
        200,
    ),
    "PATCH /v2/namespaces/{namespace}/repositories/{repository}/immutabletags": (
        lambda w: w.as_owner.patch(
            NS_REPO.format(**vars(w)) + "/immutabletags",
            json={"immutable_tags": True, "immutable_tags_rules": ["release-.*"]},
        ),
        200,
    ),
    "POST /v2/namespaces/{namespace}/repositories/{repository}/immutabletags/verify": (
        lambda w: w.as_owner.post(NS_REPO.format(**vars(w)) + "/immutabletags/verify", json={"regex": ".*"}),
        200,
    ),
    "GET /v2/orgs/{org_name}/invites": (lambda w: _invite_and(w, lambda _: _get("/api/v2/orgs/{org}/invites")(w)), 200),
    "POST /v2/invites/bulk": (
        lambda w: w.as_owner.post(
            "/api/v2/invites/bulk",
            json={"org": w.org, "team": w.team, "role": "member", "invitees": [w.hub.user("guest"), "nobody@@x"]},
        ),
        202,
    ),
    "PATCH /v2/invites/{id}/resend": (
        lambda w: _invite_and(w, lambda invite_id: w.as_owner.patch(f"/api/v2/invites/{invite_id}/resend")),
        204,
    ),
    "DELETE /v2/invites/{id}": (
        lambda w: _invite_and(w, lambda invite_id: w.as_owner.delete(f"/api/v2/invites/{invite_id}")),
        204,
    ),
    "GET /v2/orgs/{org_name}/members": (_get("/api/v2/orgs/{org}/members"), 200),
    "GET /v2/orgs/{org_name}/members/export": (_get("/api/v2/orgs/{org}/members/export"), 200),
    "PUT /v2/orgs/{org_name}/members/{username}": (
        lambda w: w.as_owner.put(f"/api/v2/orgs/{w.org}/members/{w.member}", json={"role": "member"}),
        200,
    ),
    "DELETE /v2/orgs/{org_name}/members/{username}": (
        lambda w: w.as_owner.delete(f"/api/v2/orgs/{w.org}/members/{_new_member(w)}"),
        204,
    ),
    "GET /v2/orgs/{org_name}/groups": (_get("/api/v2/orgs/{org}/groups"), 200),
    "POST /v2/orgs/{org_name}/groups": (
        lambda w: w.as_owner.post(f"/api/v2/orgs/{w.org}/groups", json={"name": unique("team")}),
        201,
    ),
    "GET /v2/orgs/{org_name}/groups/{group_name}": (_get("/api/v2/orgs/{org}/groups/{team}"), 200),
    "PUT /v2/orgs/{org_name}/groups/{group_name}": (
        lambda w: w.as_owner.put(f"/api/v2/orgs/{w.org}/groups/{w.team}", json={"name": w.team, "description": "put"}),
        200,
    ),
    "PATCH /v2/orgs/{org_name}/groups/{group_name}": (
        lambda w: w.as_owner.patch(f"/api/v2/orgs/{w.org}/groups/{w.team}", json={"description": "patched"}),
        200,
    ),
    "DELETE /v2/orgs/{org_name}/groups/{group_name}": (
        lambda w: w.as_owner.delete(f"/api/v2/orgs/{w.org}/groups/{_new_team(w)}"),
        204,
    ),
    "GET /v2/orgs/{org_name}/groups/{group_name}/members": (_get("/api/v2/orgs/{org}/groups/{team}/members"), 200),
    "POST /v2/orgs/{org_name}/groups/{group_name}/members": (
        lambda w: w.as_owner.post(f"/api/v2/orgs/{w.org}/groups/{_new_team(w)}/members", json={"member": w.member}),
        200,
    ),
    "DELETE /v2/orgs/{org_name}/groups/{group_name}/members/{username}": (
        lambda w: w.as_owner.delete(f"/api/v2/orgs/{w.org}/groups/{_new_team(w, w.member)}/members/{w.member}"),
        204,
    ),
    "GET /v2/scim/2.0/ServiceProviderConfig": (lambda w: w.hub.anon.get(SCIM + "/ServiceProviderConfig"), 200),
    "GET /v2/scim/2.0/ResourceTypes": (lambda w: w.hub.anon.get(SCIM + "/ResourceTypes"), 200),
    "GET /v2/scim/2.0/ResourceTypes/{name}": (lambda w: w.hub.anon.get(SCIM + "/ResourceTypes/User"), 200),
    "GET /v2/scim/2.0/Schemas": (lambda w: w.hub.anon.get(SCIM + "/Schemas"), 200),
    "GET /v2/scim/2.0/Schemas/{id}": (
        lambda w: w.hub.anon.get(SCIM + "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User"),
        200,
    ),
    "GET /v2/scim/2.0/Users": (lambda w: w.as_idp.get(SCIM + "/Users", params={"startIndex": 1, "count": 10}), 200),
    "POST /v2/scim/2.0/Users": (lambda w: w.as_idp.post(SCIM + "/Users", json=_scim_user()), 201),
    "GET /v2/scim/2.0/Users/{id}": (lambda w: w.as_idp.get(f"{SCIM}/Users/{w.scim_user}"), 200),
    "PUT /v2/scim/2.0/Users/{id}": (
        lambda w: w.as_idp.put(
            f"{SCIM}/Users/{w.scim_user}",
            json={**ok(w.as_idp.get(f"{SCIM}/Users/{w.scim_user}")), "displayName": "Countess"},
        ),
        200,
    ),
}


def _new_org_token(w: World) -> httpx.Response:
    resources = [{"type": "TYPE_REPO", "path": f"{w.org}/{w.repo}", "scopes": ["repo-pull", "repo-push"]}]
    return w.as_owner.post(
        f"/api/v2/orgs/{w.org}/access-tokens",
        json={"label": unique("oat"), "resources": resources, "expires_at": "2099-01-01T00:00:00Z"},
    )


def _invite_and(w: World, then: Callable[[str], httpx.Response]) -> httpx.Response:
    """Invite a new e-mail address to the organization, then make the call with the invite's id."""
    body = {"org": w.org, "invitees": [f"{unique('guest')}@example.com"]}
    invite_id = ok(w.as_owner.post("/api/v2/invites/bulk", json=body), 202)["invitees"][0]["invite"]["id"]
    return then(invite_id)


def _new_member(w: World) -> str:
    name = w.hub.user("leaver")
    ok(w.as_owner.post(f"/api/v2/orgs/{w.org}/members", json={"member": name}), 201)
    return name


def _new_team(w: World, *members: str) -> str:
    name = unique("team")
    ok(w.as_owner.post(f"/api/v2/orgs/{w.org}/groups", json={"name": name}), 201)
    for member in members:
        ok(w.as_owner.post(f"/api/v2/orgs/{w.org}/groups/{name}/members", json={"member": member}))
    return name


@pytest.mark.parametrize("op", [_param(op) for op in OPERATIONS])
def test_response_matches_hubs_schema(op: Operation, world: World) -> None:
    assert op.key in CASES, f"no case calls {op.key}"
    call, status = CASES[op.key]
    response = call(world)
    assert response.status_code == status, (response.status_code, response.text[:500])
    if op.method == "HEAD" or status == 204:
        assert response.content == b""
        return
    described = op.responses[str(status)]
    if not described:  # Hub documents no body
        return
    assert response.headers["content-type"].split(";")[0] == described["content"], response.headers
    body = list(csv.DictReader(io.StringIO(response.text))) if described["content"] == "text/csv" else response.json()
    errors = schema_errors(op.method, op.path, status, body)
    assert not errors, errors
