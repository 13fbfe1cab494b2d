"""Webhook management through the Hub API on a server with authentication on: the webhook shape field by field,
the signing secret shown once (at creation and regeneration), changes and clearing, validation errors as
problem+json, who may manage namespace and repository webhooks, test deliveries, the delivery history,
redelivery, and Docker Hub's callback URL (once per delivery)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, get_args

import httpx
import pytest

from dockyard.http.api.schemas.webhooks import EventName, PayloadFormat
from dockyard.webhooks.events import WEBHOOK_EVENTS
from dockyard.webhooks.snapshots import PAYLOAD_FORMATS
from tests.support.app_server import AppServer
from tests.support.checks import problem
from tests.support.hub_accounts import is_rfc3339_utc, ok
from tests.support.hub_api import People, Person
from tests.support.oci import push_image

URL = "http://127.0.0.1:9/hook"  # nothing listens (and the SSRF guard refuses loopback): deliveries never succeed
WEBHOOK_FIELDS = {
    "id",
    "name",
    "namespace",
    "repository",
    "url",
    "events",
    "tag_filter",
    "payload_format",
    "active",
    "disabled_reason",
    "after",
    "has_auth_header",
    "consecutive_failures",
    "failing_since",
    "created_by",
    "created_at",
    "updated_at",
}
DELIVERY_FIELDS = {
    "id",
    "webhook",
    "event_id",
    "event",
    "state",
    "attempts",
    "created_at",
    "completed_at",
    "last_error",
    "redelivery_of",
    "parent",
    "callback",
    "request",
}
ATTEMPT_FIELDS = {
    "number",
    "started_at",
    "duration_ms",
    "request_headers",
    "response",
    "error",
    "outcome",
    "next_attempt_at",
}


@dataclass
class Cast:
    """An organization with the repository ``app``, its owner, team members holding admin, write and read on
    ``app``, a user from elsewhere, the site administrator and an anonymous client."""

    people: People
    org: str
    owner: Person
    team_admin: Person
    writer: Person
    reader: Person
    stranger: Person
    admin: Person

    @property
    def anon(self) -> httpx.Client:
        return self.people.anonymous

    @property
    def ns_hooks(self) -> str:
        return f"/api/v2/namespaces/{self.org}/webhooks"

    @property
    def repo_hooks(self) -> str:
        return f"/api/v2/namespaces/{self.org}/repositories/app/webhooks"

    def hook(self, base: str | None = None, client: httpx.Client | None = None, **body: Any) -> dict[str, Any]:
        created: dict[str, Any] = ok(
            (client or self.owner.api).post(base or self.repo_hooks, json={"name": "ci", "url": URL, **body}), 201
        )
        return created


@pytest.fixture(scope="module")
def cast(secure_server: AppServer) -> Iterator[Cast]:
    people = People.open(secure_server)
    owner = people.user("owner")
    org = people.hub.org(owner.name)
    ok(owner.api.post(f"/api/v2/namespaces/{org}/repositories", json={"name": "app"}), 201)
    team_admin, writer, reader = people.user("tadmin"), people.user("writer"), people.user("reader")
    for person, level in ((team_admin, "admin"), (writer, "write"), (reader, "read")):
        people.hub.team(org, [person.name], {"app": level})
    yield Cast(people, org, owner, team_admin, writer, reader, people.user("stranger"), people.admin())
    people.close()


def deliveries_of(client: httpx.Client, hook: str) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = ok(client.get(f"/api/v2/webhooks/{hook}/deliveries"))["results"]
    return results


# -- the webhook ----------------------------------------------------------------------------------------------


def test_create_returns_every_field_and_the_secret_once(cast: Cast) -> None:
    after = cast.hook(cast.ns_hooks)["id"]
    body = {
        "name": "Deploy",
        "url": "https://ci.example.com/hooks/dockyard?x=1",
        "events": ["push", "tag_deleted", "push"],
        "tag_filter": "v*",
        "payload_format": "cloudevents",
        "auth_header": "Authorization:   Bearer s3cr3t",
        "after": after,
        "active": False,
    }
    response = cast.owner.api.post(cast.ns_hooks, json=body)
    created = ok(response, 201)
    assert set(created) == WEBHOOK_FIELDS | {"secret"}
    secret = created.pop("secret")
    assert isinstance(secret, str)
    assert len(secret) >= 40
    assert created["name"] == "Deploy"
    assert (created["namespace"], created["repository"]) == (cast.org, None)
    assert created["url"] == body["url"]
    assert created["events"] == ["push", "tag_deleted"]  # duplicates dropped, order kept
    assert (created["tag_filter"], created["payload_format"], created["after"]) == ("v*", "cloudevents", after)
    assert (created["active"], created["disabled_reason"], created["has_auth_header"]) == (False, None, True)
    assert (created["consecutive_failures"], created["failing_since"]) == (0, None)
    assert created["created_by"] == cast.owner.name
    assert is_rfc3339_utc(created["created_at"])
    assert is_rfc3339_utc(created["updated_at"])
    assert created["id"].count("-") == 4
    # Never again: not when read, listed or changed.
    read = ok(cast.owner.api.get(f"/api/v2/webhooks/{created['id']}"))
    assert read == created
    listed = ok(cast.owner.api.get(cast.ns_hooks))
    changed = cast.owner.api.patch(f"/api/v2/webhooks/{created['id']}", json={"name": "Deploy 2"})
    for text in (json.dumps(read), json.dumps(listed), changed.text):
        assert secret not in text
        assert "s3cr3t" not in text
        assert '"secret"' not in text


def test_defaults(cast: Cast) -> None:
    created = ok(cast.owner.api.post(cast.repo_hooks, json={"name": "plain", "url": URL}), 201)
    assert (created["namespace"], created["repository"]) == (cast.org, f"{cast.org}/app")
    assert created["events"] == ["push"]
    assert created["payload_format"] == "dockerhub"
    assert (created["active"], created["tag_filter"], created["after"], created["has_auth_header"]) == (
        True,
        None,
        None,
        False,
    )


def test_update_field_by_field_and_clear(cast: Cast) -> None:
    first = cast.hook()
    hook = cast.hook(auth_header="X-Token: abc", tag_filter="v*", after=first["id"])
    url = f"/api/v2/webhooks/{hook['id']}"
    changes: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"name": "renamed"}, {"name": "renamed"}),
        ({"url": "https://example.com/new"}, {"url": "https://example.com/new"}),
        ({"events": ["repository_deleted", "push"]}, {"events": ["repository_deleted", "push"]}),
        ({"tag_filter": "release-*"}, {"tag_filter": "release-*"}),
        ({"payload_format": "dockyard"}, {"payload_format": "dockyard"}),
        ({"active": False}, {"active": False}),
        ({"active": True}, {"active": True, "disabled_reason": None, "consecutive_failures": 0}),
        ({"tag_filter": ""}, {"tag_filter": None}),
        ({"auth_header": ""}, {"has_auth_header": False}),
        ({"auth_header": "X-Token: def"}, {"has_auth_header": True}),
        ({"auth_header": None}, {"has_auth_header": False}),
        ({"after": None}, {"after": None}),
        ({"after": first["id"]}, {"after": first["id"]}),
        ({"after": ""}, {"after": None}),
    ]
    before = ok(cast.owner.api.get(url))
    for change, expected in changes:
        after = ok(cast.owner.api.patch(url, json=change))
        assert {k: after[k] for k in expected} == expected, change
        untouched = set(WEBHOOK_FIELDS) - set(expected) - {"updated_at"}
        assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}, change
        assert after["updated_at"] >= before["updated_at"]
        before = after
    assert ok(cast.owner.api.patch(url, json={})) == before  # nothing to change


def test_regenerate_secret(cast: Cast) -> None:
    hook = cast.hook()
    first = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook['id']}/secret"))
    second = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook['id']}/secret"))
    assert set(first) == {"id", "secret"}
    assert first["id"] == hook["id"]
    assert len({hook["secret"], first["secret"], second["secret"]}) == 3
    assert second["secret"] not in cast.owner.api.get(f"/api/v2/webhooks/{hook['id']}").text


def test_delete(cast: Cast) -> None:
    hook = cast.hook()["id"]
    assert cast.owner.api.delete(f"/api/v2/webhooks/{hook}").status_code == 204
    problem(cast.owner.api.get(f"/api/v2/webhooks/{hook}"), 404)
    problem(cast.owner.api.delete(f"/api/v2/webhooks/{hook}"), 404)
    assert hook not in [h["id"] for h in ok(cast.owner.api.get(cast.repo_hooks))["results"]]


def test_list_is_per_scope_and_paginated(cast: Cast, secure_server: AppServer) -> None:
    org = cast.people.hub.org(cast.owner.name)
    base = f"/api/v2/namespaces/{org}/webhooks"
    made = [cast.hook(base, name=f"h{n}")["id"] for n in range(3)]
    first = ok(cast.owner.api.get(base, params={"page_size": 2}))
    assert (first["count"], [h["id"] for h in first["results"]], first["previous"]) == (3, made[:2], None)
    second = ok(cast.owner.api.get(first["next"]))
    assert ([h["id"] for h in second["results"]], second["next"]) == (made[2:], None)
    repo_ids = [h["id"] for h in ok(cast.owner.api.get(cast.repo_hooks, params={"page_size": 100}))["results"]]
    assert not set(made) & set(repo_ids)
    problem(cast.owner.api.get("/api/v2/namespaces/nosuchnamespace0/webhooks"), 404)
    problem(cast.owner.api.get(f"/api/v2/namespaces/{cast.org}/repositories/nosuchrepo/webhooks"), 404)


def test_library_repositories_have_one_component_names(cast: Cast, secure_server: AppServer) -> None:
    with httpx.Client(base_url=secure_server.url, timeout=30, auth=("admin", secure_server.ADMIN_PASSWORD)) as registry:
        push_image(registry, "plainname")
    created = cast.hook("/api/v2/namespaces/library/repositories/plainname/webhooks", cast.admin.api)
    assert (created["namespace"], created["repository"]) == ("library", "plainname")
    listed = ok(cast.admin.api.get("/api/v2/namespaces/library/repositories/plainname/webhooks"))
    assert [h["id"] for h in listed["results"]] == [created["id"]]
    problem(cast.owner.api.get("/api/v2/namespaces/library/repositories/plainname/webhooks"), 404)


# -- validation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"url": "ftp://example.com/x"}, 422),
        ({"url": "not a url"}, 422),
        ({"url": "http://"}, 422),
        ({"url": "https://user:pw@example.com/x"}, 400),  # credentials belong in auth_header
        ({"url": "https://example.com/" + "x" * 2048}, 422),
        ({"events": ["pushed"]}, 422),
        ({"events": []}, 422),
        ({"payload_format": "xml"}, 422),
        ({"payload_format": "distribution"}, 422),  # only for server-wide endpoints from the settings
        ({"auth_header": "X-Token: a\r\nX-Evil: b"}, 422),
        ({"auth_header": "X-Token: a\nb"}, 422),
        ({"auth_header": "no colon"}, 400),
        ({"auth_header": "X-Dockyard-Signature: forged"}, 400),
        ({"auth_header": "Host: elsewhere"}, 400),
        ({"name": ""}, 422),
        ({"name": "x" * 101}, 422),
        ({"name": "tab\there"}, 422),
        ({"tag_filter": "x" * 256}, 422),
        ({"after": "not-a-uuid"}, 422),
        ({"after": "00000000-0000-0000-0000-000000000000"}, 400),
        ({"active": "maybe"}, 422),
    ],
)
def test_invalid_webhooks_are_problems(cast: Cast, change: dict[str, Any], status: int) -> None:
    body = problem(cast.owner.api.post(cast.repo_hooks, json={"name": "x", "url": URL, **change}), status)
    if "auth_header" in change:
        assert change["auth_header"] not in json.dumps(body)  # a credential is not echoed
    hook = cast.hook()["id"]
    if "name" not in change or change["name"]:
        problem(cast.owner.api.patch(f"/api/v2/webhooks/{hook}", json=change), status)


def test_after_must_be_in_the_same_scope_and_not_a_cycle(cast: Cast) -> None:
    a = cast.hook()["id"]
    b = cast.hook(after=a)["id"]
    c = cast.hook(after=b)["id"]
    problem(cast.owner.api.patch(f"/api/v2/webhooks/{a}", json={"after": c}), 400)
    problem(cast.owner.api.patch(f"/api/v2/webhooks/{a}", json={"after": a}), 400)
    elsewhere = cast.hook(cast.ns_hooks)["id"]
    problem(cast.owner.api.post(cast.repo_hooks, json={"name": "x", "url": URL, "after": elsewhere}), 400)


def test_openapi_lists_the_events_and_formats_and_explains_the_signature(secure_server: AppServer) -> None:
    assert set(get_args(EventName)) == WEBHOOK_EVENTS
    assert get_args(PayloadFormat) == PAYLOAD_FORMATS
    doc = httpx.get(f"{secure_server.url}/api/v2/openapi.json", timeout=30).json()
    created = doc["paths"]["/api/v2/namespaces/{ns}/webhooks"]["post"]["responses"]["201"]
    assert "X-Dockyard-Signature" in created["description"]
    assert "application/json" in created["content"]


# -- who may ------------------------------------------------------------------------------------------------


def test_namespace_webhooks_are_for_owners(cast: Cast) -> None:
    body = {"name": "x", "url": URL}
    for person in (cast.owner, cast.admin):
        ok(person.api.post(cast.ns_hooks, json=body), 201)
    hook = cast.hook(cast.ns_hooks)["id"]
    # The namespace is public: refused (403). A webhook is seen only by who may manage it: 404 to anyone else.
    for person in (cast.team_admin, cast.writer, cast.reader, cast.stranger):
        problem(person.api.post(cast.ns_hooks, json=body), 403)
        problem(person.api.get(cast.ns_hooks), 403)
        problem(person.api.get(f"/api/v2/webhooks/{hook}"), 404)
        problem(person.api.delete(f"/api/v2/webhooks/{hook}"), 404)
    problem(cast.anon.post(cast.ns_hooks, json=body), 401)
    problem(cast.anon.get(f"/api/v2/webhooks/{hook}"), 401)
    ok(cast.admin.api.get(f"/api/v2/webhooks/{hook}"))


def test_repository_webhooks_are_for_repository_admins(cast: Cast) -> None:
    body = {"name": "x", "url": URL}
    for person in (cast.owner, cast.team_admin, cast.admin):
        made = ok(person.api.post(cast.repo_hooks, json=body), 201)
        assert made["created_by"] == person.name
        for other in (cast.owner, cast.team_admin, cast.admin):
            ok(other.api.get(f"/api/v2/webhooks/{made['id']}"))
    hook = cast.hook()["id"]
    # The private repository: readers see it (403), a stranger does not (404, as for no repository at all).
    for person, status in ((cast.writer, 403), (cast.reader, 403), (cast.stranger, 404)):
        problem(person.api.post(cast.repo_hooks, json=body), status)
        problem(person.api.get(cast.repo_hooks), status)
        for method, path in (
            ("GET", ""),
            ("PATCH", ""),
            ("DELETE", ""),
            ("POST", "/secret"),
            ("POST", "/test"),
            ("GET", "/deliveries"),
        ):
            problem(
                person.api.request(method, f"/api/v2/webhooks/{hook}{path}", json={} if method == "PATCH" else None),
                404,
            )
    problem(cast.anon.get(cast.repo_hooks), 401)
    assert ok(cast.team_admin.api.delete(f"/api/v2/webhooks/{hook}"), 204) is None


def test_tokens_need_repo_admin(cast: Cast, secure_server: AppServer) -> None:
    hook = cast.hook()["id"]
    for scope, status in (("repo:read", 403), ("repo:write", 403), ("repo:admin", 200)):
        token = ok(cast.owner.api.post("/api/v2/access-tokens", json={"token_label": scope, "scopes": [scope]}), 201)[
            "token"
        ]
        with httpx.Client(
            base_url=secure_server.url, timeout=30, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            assert client.get(f"/api/v2/webhooks/{hook}").status_code == (404 if status == 403 else status)
            assert client.get(cast.ns_hooks).status_code == status


# -- deliveries ---------------------------------------------------------------------------------------------


def test_test_delivery_history_and_redelivery(cast: Cast) -> None:
    hook = cast.hook()["id"]
    sent = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook}/test"), 202)
    assert set(sent) == DELIVERY_FIELDS
    assert (sent["webhook"], sent["event"], sent["redelivery_of"], sent["parent"], sent["callback"]) == (
        hook,
        "push",
        None,
        None,
        None,
    )
    assert is_rfc3339_utc(sent["created_at"])
    assert sent["request"]["content_type"].startswith("application/json")
    payload = json.loads(sent["request"]["body"])
    assert payload["repository"]["repo_name"] == f"{cast.org}/app"
    assert payload["push_data"]["tag"] == "latest"
    assert "/api/v2/webhooks/callbacks/" in payload["callback_url"]

    again = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook}/deliveries/{sent['id']}/redeliver"), 202)
    assert set(again) == DELIVERY_FIELDS
    assert again["id"] != sent["id"]
    assert (again["redelivery_of"], again["event_id"], again["request"]) == (
        sent["id"],
        sent["event_id"],
        sent["request"],
    )
    assert [d["id"] for d in deliveries_of(cast.owner.api, hook)] == [again["id"], sent["id"]]  # newest first
    assert "history" not in deliveries_of(cast.owner.api, hook)[0]

    detail = ok(cast.owner.api.get(f"/api/v2/webhooks/{hook}/deliveries/{sent['id']}"))
    assert set(detail) == DELIVERY_FIELDS | {"history"}
    assert detail["request"] == sent["request"]
    for attempt in detail["history"]:  # however far the (failing) delivery has got
        assert set(attempt) == ATTEMPT_FIELDS
        assert attempt["response"] is None or set(attempt["response"]) == {"status", "headers", "body"}
        assert is_rfc3339_utc(attempt["started_at"])

    other = cast.hook()["id"]
    problem(cast.owner.api.get(f"/api/v2/webhooks/{other}/deliveries/{sent['id']}"), 404)
    problem(cast.owner.api.post(f"/api/v2/webhooks/{other}/deliveries/{sent['id']}/redeliver"), 404)
    problem(cast.owner.api.get(f"/api/v2/webhooks/{hook}/deliveries/nope"), 404)
    for person in (cast.reader, cast.stranger):
        problem(person.api.get(f"/api/v2/webhooks/{hook}/deliveries/{sent['id']}"), 404)
        problem(person.api.post(f"/api/v2/webhooks/{hook}/deliveries/{sent['id']}/redeliver"), 404)
    problem(cast.anon.post(f"/api/v2/webhooks/{hook}/deliveries/{sent['id']}/redeliver"), 401)


def test_namespace_webhook_test_uses_a_sample_repository(cast: Cast) -> None:
    hook = cast.hook(cast.ns_hooks, payload_format="cloudevents")["id"]
    sent = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook}/test"), 202)
    assert sent["request"]["content_type"].startswith("application/cloudevents+json")
    assert cast.org in sent["request"]["body"]


def test_audit_log_records_webhook_changes(cast: Cast) -> None:
    hook = cast.hook()["id"]
    ok(cast.owner.api.patch(f"/api/v2/webhooks/{hook}", json={"name": "audited"}))
    ok(cast.owner.api.post(f"/api/v2/webhooks/{hook}/test"), 202)
    assert cast.owner.api.delete(f"/api/v2/webhooks/{hook}").status_code == 204
    logs = ok(cast.owner.api.get(f"/api/v2/auditlogs/{cast.org}", params={"page_size": 100}))["logs"]
    actions = {entry["action"] for entry in logs}
    assert {"webhook.create", "webhook.update", "webhook.test", "webhook.delete"} <= actions


# -- callbacks ----------------------------------------------------------------------------------------------


def _callback_url(cast: Cast) -> tuple[str, str, str]:
    """A test delivery's callback path; returns (webhook, delivery, path)."""
    hook = cast.hook()["id"]
    sent = ok(cast.owner.api.post(f"/api/v2/webhooks/{hook}/test"), 202)
    callback_url = json.loads(sent["request"]["body"])["callback_url"]
    return hook, sent["id"], "/api/v2/webhooks/callbacks/" + callback_url.rsplit("/", 1)[1]


def test_callback_once_without_credentials(cast: Cast) -> None:
    hook, delivery, path = _callback_url(cast)
    report = {"state": "success", "description": "deployed", "context": "ci", "target_url": "https://ci.example/1"}
    problem(cast.anon.post(path, json={"state": "done"}), 422)
    problem(cast.anon.post(path, json={**report, "target_url": "ftp://x"}), 422)
    problem(cast.anon.post(path, json={**report, "target_url": "http://[::1"}), 400)  # urlsplit raises
    problem(cast.anon.post(path, json={**report, "target_url": "http://host:99999/"}), 400)
    problem(cast.anon.post(path, json={**report, "description": "x" * 256}), 422)
    problem(cast.anon.post(path, json={**report, "context": "x" * 101}), 422)
    assert ok(cast.anon.post(path, json=report)) == {}
    problem(cast.anon.post(path, json=report), 409)
    problem(cast.owner.api.post(path, json={"state": "failure"}), 409)
    detail = ok(cast.owner.api.get(f"/api/v2/webhooks/{hook}/deliveries/{delivery}"))
    assert detail["callback"] == {k: report[k] for k in ("state", "description", "context", "target_url")}


def test_callback_minimal_and_unknown_tokens(cast: Cast) -> None:
    _, _, path = _callback_url(cast)
    # Credentials, even wrong ones, play no part: the token is the capability.
    assert ok(cast.anon.post(path, json={"state": "error"}, headers={"Authorization": "Bearer junk"})) == {}
    for token in ("unknown", "x" * 300, "callbacks"):
        problem(cast.anon.post(f"/api/v2/webhooks/callbacks/{token}", json={"state": "success"}), 404)
    problem(cast.anon.post("/api/v2/webhooks/callbacks/secret", json={"state": "success"}), 404)
