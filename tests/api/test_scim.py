"""SCIM 2.0 provisioning (RFC 7643/7644) at Docker Hub's paths, driven as an identity provider drives it: httpx
speaking RFC 7644 with an organization's SCIM bearer token. Users are created, read, filtered, replaced, patched
(``active: false`` ends their sign-in, API tokens and PATs and their membership; ``active: true`` restores them)
and deleted; errors are SCIM's error schema with the RFC's ``scimType``; a token reaches its own organization's
users only; owners create, rotate and revoke the token."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.checks import problem, unique
from tests.support.hub_accounts import Accounts, accounts, ok, token_status
from tests.support.server import Server

SCIM = "/api/v2/scim/2.0"
SCIM_JSON = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
EXTENSION = "urn:dockyard:params:scim:schemas:extension:2.0:User"


@dataclass
class Tenant:
    hub: Accounts
    owner: str
    org: str
    token: str

    def idp(self, token: str | None = None) -> httpx.Client:
        """A client as the identity provider: the SCIM token as a bearer token, SCIM's content type."""
        client = self.hub.client(bearer=token or self.token)
        client.headers["Content-Type"] = SCIM_JSON
        client.headers["Accept"] = SCIM_JSON
        return client


def _tenant(hub: Accounts) -> Tenant:
    owner = hub.user("owner")
    org = hub.org(owner)
    made = ok(hub.as_user(owner).post(f"/api/v2/orgs/{org}/scim-token"), 201)
    assert made["token"].startswith("dy_scim_")
    return Tenant(hub, owner, org, made["token"])


@pytest.fixture(scope="module")
def hub(secure_server: Server) -> Iterator[Accounts]:
    with accounts(secure_server) as made:
        yield made


@pytest.fixture(scope="module")
def tenant(hub: Accounts) -> Tenant:
    return _tenant(hub)


def scim(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text)
    if status == 204:
        assert response.content == b""
        return None
    assert response.headers["content-type"].split(";")[0] == SCIM_JSON, response.headers
    return response.json()


def scim_error(response: httpx.Response, status: int, scim_type: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = scim(response, status)
    assert body["schemas"] == [ERROR_SCHEMA], body
    assert body["status"] == str(status), body
    assert isinstance(body["detail"], str)
    assert body.get("scimType") == scim_type, body
    return body


def new_user(user_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_SCHEMA],
        "userName": user_name,
        "name": {"givenName": "Jane", "familyName": "Doe"},
        "emails": [{"value": user_name if "@" in user_name else f"{user_name}@example.com", "primary": True}],
        "active": True,
        **extra,
    }


def members(tenant: Tenant) -> set[str]:
    listed = ok(tenant.hub.as_user(tenant.owner).get(f"/api/v2/orgs/{tenant.org}/members", params={"page_size": 100}))
    return {member["username"] for member in listed["results"]}


def test_discovery_documents(hub: Accounts) -> None:
    config = scim(hub.anon.get(f"{SCIM}/ServiceProviderConfig"), 200)
    assert config["patch"] == {"supported": True}
    assert config["filter"]["supported"] is True
    assert config["bulk"]["supported"] is False
    assert config["authenticationSchemes"][0]["type"] == "oauthbearertoken"
    types = scim(hub.anon.get(f"{SCIM}/ResourceTypes"), 200)
    assert types["schemas"] == [LIST_SCHEMA]
    assert [item["id"] for item in types["Resources"]] == ["User"]
    assert scim(hub.anon.get(f"{SCIM}/ResourceTypes/User"), 200)["endpoint"] == "/Users"
    scim_error(hub.anon.get(f"{SCIM}/ResourceTypes/Group"), 404)
    schemas = scim(hub.anon.get(f"{SCIM}/Schemas"), 200)
    assert {item["id"] for item in schemas["Resources"]} == {USER_SCHEMA, EXTENSION}
    user_schema = scim(hub.anon.get(f"{SCIM}/Schemas/{USER_SCHEMA}"), 200)
    assert {attribute["name"] for attribute in user_schema["attributes"]} >= {"userName", "name", "active", "emails"}
    scim_error(hub.anon.get(f"{SCIM}/Schemas/urn:nothing"), 404)


def test_create_get_filter_replace(tenant: Tenant) -> None:
    idp = tenant.idp()
    user_name = f"{unique('jane')}@example.com"
    created = scim(idp.post(f"{SCIM}/Users", json=new_user(user_name, externalId="okta-1")), 201)
    assert created["userName"] == user_name
    assert created["active"] is True
    assert created["externalId"] == "okta-1"
    assert created["name"]["givenName"] == "Jane"
    assert created["emails"][0]["value"] == user_name
    assert created["meta"]["resourceType"] == "User"
    location = created["meta"]["location"]
    assert location.endswith(f"{SCIM}/Users/{created['id']}")
    account = created[EXTENSION]["accountName"]
    assert account == user_name.split("@")[0]
    assert account in members(tenant)

    fetched = scim(idp.get(f"{SCIM}/Users/{created['id']}"), 200)
    assert fetched == created

    # userName is case-insensitive (RFC 7643 §4.1.1), and the filter says so.
    found = scim(idp.get(f"{SCIM}/Users", params={"filter": f'userName eq "{user_name.upper()}"'}), 200)
    assert found["schemas"] == [LIST_SCHEMA]
    assert found["totalResults"] == 1
    assert [user["id"] for user in found["Resources"]] == [created["id"]]
    by_external = scim(idp.get(f"{SCIM}/Users", params={"filter": 'externalId eq "okta-1"'}), 200)
    assert [user["id"] for user in by_external["Resources"]] == [created["id"]]
    none = scim(idp.get(f"{SCIM}/Users", params={"filter": 'userName eq "nobody@example.com"'}), 200)
    assert none["totalResults"] == 0
    assert none["Resources"] == []
    scim_error(idp.get(f"{SCIM}/Users", params={"filter": 'title co "x"'}), 400, "invalidFilter")

    replaced = scim(
        idp.put(
            f"{SCIM}/Users/{created['id']}",
            json=new_user(user_name, name={"givenName": "Janet", "familyName": "Roe"}, displayName="J. Roe"),
        ),
        200,
    )
    assert replaced["name"]["givenName"] == "Janet"
    assert replaced["displayName"] == "J. Roe"
    assert "externalId" not in replaced  # PUT replaces: what is not given is cleared
    assert replaced[EXTENSION]["accountName"] == account  # the account name never changes
    profile = ok(tenant.hub.admin.get(f"/api/v2/users/{account}"))
    assert profile["full_name"] == "J. Roe"
    scim_error(idp.get(f"{SCIM}/Users/{unique('missing')}"), 404)


def test_paging(tenant: Tenant) -> None:
    idp = tenant.idp()
    for _ in range(3):
        scim(idp.post(f"{SCIM}/Users", json=new_user(unique("pager"))), 201)
    everyone = scim(idp.get(f"{SCIM}/Users"), 200)
    total = everyone["totalResults"]
    assert total >= 3
    assert everyone["startIndex"] == 1
    assert everyone["itemsPerPage"] == len(everyone["Resources"]) == total
    page = scim(idp.get(f"{SCIM}/Users", params={"startIndex": 2, "count": 2}), 200)
    assert page["startIndex"] == 2
    assert page["totalResults"] == total
    assert [user["id"] for user in page["Resources"]] == [user["id"] for user in everyone["Resources"][1:3]]
    counted = scim(idp.get(f"{SCIM}/Users", params={"count": 0}), 200)
    assert counted["totalResults"] == total
    assert counted["Resources"] == []


def test_deactivation_refuses_sign_in_and_reactivation_restores_it(tenant: Tenant, secure_server: Server) -> None:
    idp = tenant.idp()
    hub = tenant.hub
    created = scim(idp.post(f"{SCIM}/Users", json=new_user(unique("leaver"))), 201)
    account = created[EXTENSION]["accountName"]
    # Provisioned users have no password: they sign in by SSO, or after an administrator sets one.
    problem(hub.anon.post("/api/v2/auth/token", json={"identifier": account, "secret": "no-password-yet"}), 401)
    password = "set-by-an-admin-1"
    assert hub.admin.put(f"/api/v2/users/{account}/password", json={"new_password": password}).status_code == 204
    pat = ok(
        hub.as_user(account, password).post(
            "/api/v2/access-tokens", json={"token_label": "laptop", "scopes": ["repo:read"]}
        ),
        201,
    )["token"]
    api_token = hub.api_token(account, password)
    with httpx.Client(base_url=secure_server.url, timeout=30) as client:
        assert token_status(client, (account, password)) == 200
        assert token_status(client, (account, pat)) == 200

        patch = {
            "schemas": [PATCH_SCHEMA],
            "Operations": [{"op": "replace", "value": {"active": False}}],
        }
        deactivated = scim(idp.patch(f"{SCIM}/Users/{created['id']}", json=patch), 200)
        assert deactivated["active"] is False
        assert token_status(client, (account, password)) == 401
        assert token_status(client, (account, pat)) == 401
        problem(hub.client(bearer=api_token).get("/api/v2/user"), 401)
        problem(hub.anon.post("/api/v2/users/login", json={"username": account, "password": password}), 401)
        assert account not in members(tenant)
        assert scim(idp.get(f"{SCIM}/Users/{created['id']}"), 200)["active"] is False

        # Entra ID sends booleans as strings and names the attribute in a path.
        patch = {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "Replace", "path": "active", "value": "True"}]}
        assert scim(idp.patch(f"{SCIM}/Users/{created['id']}", json=patch), 200)["active"] is True
        assert token_status(client, (account, password)) == 200
        assert token_status(client, (account, pat)) == 200
        assert account in members(tenant)


def test_patch_names_and_delete(tenant: Tenant) -> None:
    idp = tenant.idp()
    created = scim(idp.post(f"{SCIM}/Users", json=new_user(unique("patchy"))), 201)
    path = f"{SCIM}/Users/{created['id']}"
    patch = {
        "schemas": [PATCH_SCHEMA],
        "Operations": [
            {"op": "replace", "path": "name.givenName", "value": "Ann"},
            {"op": "add", "path": "name.familyName", "value": "Smith"},
            {"op": "replace", "path": 'emails[type eq "work"].value', "value": "ann@example.com"},
            {"op": "remove", "path": "displayName"},
        ],
    }
    patched = scim(idp.patch(path, json=patch), 200)
    assert patched["name"]["givenName"] == "Ann"
    assert patched["name"]["familyName"] == "Smith"
    assert patched["displayName"] == "Ann Smith"
    assert patched["emails"][0]["value"] == "ann@example.com"
    scim_error(idp.patch(path, json={"Operations": [{"op": "move", "path": "active"}]}), 400, "invalidSyntax")
    scim_error(idp.patch(path, json={"Operations": [{"op": "remove", "path": "userName"}]}), 400, "mutability")
    scim_error(
        idp.patch(path, json={"Operations": [{"op": "replace", "path": "active", "value": 3}]}), 400, "invalidValue"
    )
    account = created[EXTENSION]["accountName"]
    scim(idp.delete(path), 204)
    scim_error(idp.get(path), 404)
    problem(tenant.hub.admin.get(f"/api/v2/users/{account}"), 404)
    assert account not in members(tenant)


def test_duplicate_user_name_is_a_uniqueness_conflict(tenant: Tenant, hub: Accounts) -> None:
    idp = tenant.idp()
    user_name = f"{unique('twin')}@example.com"
    scim(idp.post(f"{SCIM}/Users", json=new_user(user_name)), 201)
    scim_error(idp.post(f"{SCIM}/Users", json=new_user(user_name.upper())), 409, "uniqueness")
    # Another organization's provider cannot take it either: userName is unique on the server.
    other = _tenant(hub)
    scim_error(other.idp().post(f"{SCIM}/Users", json=new_user(user_name)), 409, "uniqueness")
    # A userName that is a Dockyard account name means that account: taken → conflict, never another name.
    existing = hub.user("taken")
    scim_error(idp.post(f"{SCIM}/Users", json=new_user(existing)), 409, "uniqueness")
    # Renaming onto a taken userName is refused too.
    second = scim(idp.post(f"{SCIM}/Users", json=new_user(unique("second"))), 201)
    scim_error(idp.put(f"{SCIM}/Users/{second['id']}", json=new_user(user_name)), 409, "uniqueness")
    scim_error(idp.post(f"{SCIM}/Users", json={"schemas": [USER_SCHEMA]}), 400, "invalidValue")
    scim_error(idp.post(f"{SCIM}/Users", content=b"[1, 2", headers={"Content-Type": SCIM_JSON}), 400, "invalidSyntax")


def test_bad_tokens_are_refused(tenant: Tenant, hub: Accounts) -> None:
    for client in (
        hub.anon,
        tenant.idp("dy_scim_" + "x" * 43),
        tenant.idp("not-a-token"),
        hub.as_user(tenant.owner),  # an owner's own credentials are no SCIM token
        hub.client(bearer=hub.api_token(tenant.owner)),
    ):
        scim_error(client.get(f"{SCIM}/Users"), 401)
        scim_error(client.post(f"{SCIM}/Users", json=new_user(unique("nope"))), 401)
    # The SCIM token is no credential anywhere else.
    problem(tenant.idp().get(f"/api/v2/orgs/{tenant.org}/members"), 401)


def test_a_token_sees_only_its_organization(tenant: Tenant, hub: Accounts) -> None:
    mine = scim(tenant.idp().post(f"{SCIM}/Users", json=new_user(unique("mine"))), 201)
    other = _tenant(hub).idp()
    scim_error(other.get(f"{SCIM}/Users/{mine['id']}"), 404)
    scim_error(other.put(f"{SCIM}/Users/{mine['id']}", json=new_user(mine["userName"], active=False)), 404)
    scim_error(other.patch(f"{SCIM}/Users/{mine['id']}", json={"Operations": [{"op": "remove", "path": "name"}]}), 404)
    scim_error(other.delete(f"{SCIM}/Users/{mine['id']}"), 404)
    listed = scim(other.get(f"{SCIM}/Users", params={"filter": f'userName eq "{mine["userName"]}"'}), 200)
    assert listed["totalResults"] == 0
    assert scim(other.get(f"{SCIM}/Users"), 200)["totalResults"] == 0
    assert scim(tenant.idp().get(f"{SCIM}/Users/{mine['id']}"), 200)["active"] is True


def test_owners_manage_the_token(hub: Accounts) -> None:
    owner, member = hub.user("owner"), hub.user("member")
    org = hub.org(owner, member)
    path = f"/api/v2/orgs/{org}/scim-token"
    problem(hub.as_user(owner).get(path), 404)
    problem(hub.as_user(member).post(path), 403)
    problem(hub.anon.post(path), 401)
    first = ok(hub.as_user(owner).post(path), 201)
    assert first["scim_base_url"].endswith(SCIM)
    shown = ok(hub.as_user(owner).get(path))
    assert "token" not in shown
    assert first["token"].startswith(shown["token_prefix"])
    problem(hub.as_user(member).get(path), 403)
    tenant = Tenant(hub, owner, org, first["token"])
    scim(tenant.idp().get(f"{SCIM}/Users"), 200)
    # Rotation: the new token works, the old one stops at once.
    second = ok(hub.as_user(owner).post(path), 201)
    scim_error(tenant.idp().get(f"{SCIM}/Users"), 401)
    scim(tenant.idp(second["token"]).get(f"{SCIM}/Users"), 200)
    assert ok(hub.as_user(owner).get(path))["last_used_at"] is not None
    problem(hub.as_user(member).delete(path), 403)
    assert hub.as_user(owner).delete(path).status_code == 204
    scim_error(tenant.idp(second["token"]).get(f"{SCIM}/Users"), 401)
    problem(hub.as_user(owner).delete(path), 404)
    actions = [entry["action"] for entry in ok(hub.as_user(owner).get(f"/api/v2/auditlogs/{org}"))["logs"]]
    assert actions.count("scim.token.create") == 2
    assert "scim.token.revoke" in actions
