"""Namespaces belong to accounts, on a server with authentication on: a site administrator's push into a namespace
without an account creates an organization the administrator owns (nobody else can then claim the name); anyone
else's push there is refused ``DENIED`` "namespace does not exist"; deleting an account deletes what its namespace
held (repositories with their upload objects, webhooks with their deliveries, trusted keys and identities, trust
policies, the managed signing key), archives its audit log and reserves its name for the grace period; a new
account of the old name then starts empty."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.app_server import AppServer
from tests.support.checks import problem, unique
from tests.support.hub_accounts import ADMIN, Accounts, grant_actions, ok
from tests.support.oci import error_codes, push_image
from tests.support.server import Server
from tests.support.storage_view import StorageView

HOOK_URL = "http://127.0.0.1:9/hook"  # nothing listens: deliveries never succeed


def public_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def members(hub: Accounts, org: str) -> dict[str, str]:
    body = ok(hub.admin.get(f"/api/v2/orgs/{org}/members"))
    return {m["username"]: m["role"] for m in body["results"]}


def audit_actions(client: httpx.Client, namespace: str) -> list[tuple[str, dict[str, Any]]]:
    body = ok(client.get(f"/api/v2/auditlogs/{namespace}", params={"page_size": 100}))
    return [(entry["action"], entry["data"]) for entry in body["logs"]]


def count(server: Server, table: str, namespace: str) -> int:
    rows = server.query_sql(f"SELECT COUNT(*) FROM {table} WHERE namespace = :ns", ns=namespace)  # noqa: S608
    return int(rows[0][0])


def test_an_administrators_push_creates_an_organization_nobody_else_can_claim(hub: Accounts) -> None:
    ns = unique("projx")
    push_image(hub.admin, f"{ns}/app", "v1")
    org = ok(hub.admin.get(f"/api/v2/orgs/{ns}"))
    assert org["orgname"] == ns
    assert members(hub, ns) == {"admin": "Owner"}
    assert ("org.create", {"owner": "admin", "reason": "first push into a namespace without an account"}) in (
        audit_actions(hub.admin, ns)
    )
    user = hub.user("squatter")
    body = problem(hub.as_user(user).post("/api/v2/orgs", json={"orgname": ns}), 409)
    assert "taken" in body["detail"]
    # The user holds nothing on the administrator's repository: no grant, no read, no push.
    assert grant_actions(hub.anon, f"{ns}/app", (user, "a-password-for-tests")) == []
    client = hub.as_user(user)
    assert error_codes(client.get(f"/v2/{ns}/app/manifests/v1")) == ["DENIED"]
    assert error_codes(client.post(f"/v2/{ns}/app/blobs/uploads/")) == ["DENIED"]
    assert error_codes(client.post(f"/v2/{ns}/other/blobs/uploads/")) == ["DENIED"]


def test_an_administrators_push_into_library_creates_the_library_organization(hub: Accounts) -> None:
    push_image(hub.admin, f"official{uuid.uuid4().hex[:8]}", "v1")
    assert ok(hub.admin.get("/api/v2/orgs/library"))["orgname"] == "library"
    assert members(hub, "library")["admin"] == "Owner"


def test_a_push_into_a_namespace_without_an_account_is_refused(hub: Accounts) -> None:
    user = hub.user("pusher")
    ns = unique("nosuch")
    token = hub.pat(user, "repo:write")["token"]
    grant = hub.anon.get("/v2/token", params={"scope": f"repository:{ns}/app:pull,push"}, auth=(user, token))
    assert grant.status_code == 200, grant.text
    bearer = {"Authorization": f"Bearer {grant.json()['token']}"}
    for response in (
        hub.anon.post(f"/v2/{ns}/app/blobs/uploads/", headers=bearer),
        hub.as_user(user).post(f"/v2/{ns}/app/blobs/uploads/"),
        hub.client(auth=(user, token)).put(f"/v2/{ns}/app/manifests/v1", content=b"{}"),
    ):
        assert response.status_code == 403, response.text
        error = response.json()["errors"][0]
        assert (error["code"], error["message"]) == ("DENIED", "namespace does not exist")
    problem(hub.admin.get(f"/api/v2/orgs/{ns}"), 404)
    # The user's own namespace still takes pushes.
    push_image(hub.as_user(user), f"{user}/app", "v1")


def _populate(hub: Accounts, server: Server, owner: str, org: str) -> dict[str, Any]:
    client = hub.as_user(owner)
    push_image(client, f"{org}/app", "v1")
    started = client.post(f"/v2/{org}/app/blobs/uploads/")
    assert started.status_code == 202, started.text
    upload = started.headers["docker-upload-uuid"]
    namespace_hook = ok(client.post(f"/api/v2/namespaces/{org}/webhooks", json={"name": "ns", "url": HOOK_URL}), 201)
    repo_hook = ok(
        client.post(f"/api/v2/namespaces/{org}/repositories/app/webhooks", json={"name": "repo", "url": HOOK_URL}),
        201,
    )
    ok(client.post(f"/api/v2/namespaces/{org}/trusted-keys", json={"name": "ci", "public_key": public_pem()}), 201)
    ok(client.put(f"/api/v2/namespaces/{org}/trust-policy", json={"mode": "warn", "exempt": []}))
    ok(client.put(f"/api/v2/namespaces/{org}/repositories/app/trust-policy", json={"mode": "enforce", "exempt": []}))
    ok(client.post(f"/api/v2/namespaces/{org}/signing-key"), 201)
    push_image(client, f"{org}/app", "v2")  # a push event for the webhooks to deliver
    return {"upload": upload, "hooks": [namespace_hook["id"], repo_hook["id"]]}


NAMESPACE_TABLES = (
    "repositories",
    "webhooks",
    "trusted_keys",
    "trusted_identities",
    "trust_policies",
    "namespace_signing_keys",
)


def test_deleting_an_organization_deletes_what_its_namespace_held(hub: Accounts, secure_server: AppServer) -> None:
    owner = hub.user("owner")
    org = hub.org(owner)
    made = _populate(hub, secure_server, owner, org)
    storage = StorageView(secure_server)
    assert made["upload"] in storage.upload_ids()
    assert count(secure_server, "webhooks", org) == 2
    assert count(secure_server, "audit_log", org) > 0

    assert hub.as_user(owner).delete(f"/api/v2/orgs/{org}").status_code == 204

    for table in NAMESPACE_TABLES:
        assert count(secure_server, table, org) == 0, table
    deliveries = secure_server.query_sql(
        "SELECT COUNT(*) FROM webhook_deliveries d LEFT JOIN webhooks w ON w.id = d.webhook_id WHERE w.id IS NULL"
    )
    assert deliveries[0][0] == 0
    assert secure_server.query_sql("SELECT COUNT(*) FROM uploads WHERE id = :id", id=made["upload"])[0][0] == 0
    assert made["upload"] not in storage.upload_ids()
    for hook in made["hooks"]:
        problem(hub.admin.get(f"/api/v2/webhooks/{hook}"), 404)
    problem(hub.admin.get(f"/api/v2/namespaces/{org}/repositories/app"), 404)
    # The audit log is kept, archived: it no longer answers to the name.
    assert count(secure_server, "audit_log", org) > 0
    live = secure_server.query_sql(
        "SELECT COUNT(*) FROM audit_log WHERE namespace = :ns AND archived_at IS NULL", ns=org
    )
    assert live[0][0] == 0


def test_a_deleted_accounts_name_is_reserved_then_starts_empty(hub: Accounts, secure_server: AppServer) -> None:
    owner = hub.user("owner")
    org = hub.org(owner)
    _populate(hub, secure_server, owner, org)
    assert hub.as_user(owner).delete(f"/api/v2/orgs/{org}").status_code == 204

    claimant = hub.user("claimant")
    for client in (hub.as_user(claimant), hub.as_user(owner), hub.admin):
        body = problem(client.post("/api/v2/orgs", json={"orgname": org}), 409)
        assert "reserved" in body["detail"]
    body = problem(hub.admin.post("/api/v2/users", json={"username": org, "password": "pw-" + org}), 409)
    assert "reserved" in body["detail"]
    assert error_codes(hub.admin.post(f"/v2/{org}/app/blobs/uploads/")) == ["DENIED"]

    aged = secure_server.execute_sql(
        "UPDATE reserved_names SET reserved_until = created_at WHERE name = :name", name=org
    )
    assert aged == 1
    ok(hub.as_user(claimant).post("/api/v2/orgs", json={"orgname": org}), 201)
    client = hub.as_user(claimant)
    assert ok(client.get(f"/api/v2/namespaces/{org}/webhooks"))["count"] == 0
    assert ok(client.get(f"/api/v2/namespaces/{org}/trusted-keys"))["count"] == 0
    assert ok(client.get(f"/api/v2/namespaces/{org}/trust-policy"))["mode"] == "off"
    problem(client.get(f"/api/v2/namespaces/{org}/signing-key"), 404)
    problem(client.get(f"/api/v2/namespaces/{org}/repositories/app"), 404)
    assert [action for action, _ in audit_actions(client, org)] == ["org.create"]


def test_deleting_a_user_reserves_the_name_and_archives_the_audit_log(hub: Accounts, secure_server: AppServer) -> None:
    user = hub.user("leaving")
    push_image(hub.as_user(user), f"{user}/app", "v1")
    assert hub.admin.delete(f"/api/v2/users/{user}").status_code == 204
    assert count(secure_server, "repositories", user) == 0
    body = problem(hub.admin.post("/api/v2/orgs", json={"orgname": user, "owner": ADMIN[0]}), 409)
    assert "reserved" in body["detail"]
    live = secure_server.query_sql(
        "SELECT COUNT(*) FROM audit_log WHERE namespace = :ns AND archived_at IS NULL", ns=user
    )
    assert live[0][0] == 0
