"""Matrix rows for the webhook routes of the Hub API. Namespace-wide webhooks of the organization are its owners'
(a ``repo:read`` token of the owner does not administer it); the repository ``app``'s webhooks are for admin on
it (the owner and the admins' team). Read-only rows share one webhook (and one delivery) made by the site
administrator; deleting rows delete a fresh webhook each. The callback takes no credentials: each principal
posts to the callback URL of a fresh test delivery, and every one of them — anonymous or with dead credentials —
is accepted, because the token in the URL is the capability.

Refusals follow docs/auth.md ("Who decides: hide or deny"): the namespace is public, so its webhooks are refused
(403) to non-owners; the private repository ``app`` is 404 to whoever may not pull it (the stranger) and 403 to
those who may; a webhook or delivery by id is 404 to everyone who may not manage it."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.security.rows_api import DENIED, HIDDEN, api, by
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER, PRINCIPALS, STRANGER, TEAM_ADMIN, World

URL = "http://127.0.0.1:9/hook"  # never reached: the SSRF guard refuses loopback receivers
REPO_ADMINS = {OWNER, TEAM_ADMIN}
NS_HOOKS = "/api/v2/namespaces/{ns}/webhooks"
REPO_HOOKS = "/api/v2/namespaces/{ns}/repositories/{repo}/webhooks"
HOOK = "/api/v2/webhooks/{uuid}"
DELIVERY = "/api/v2/webhooks/{uuid}/deliveries/{delivery}"

_shared: dict[tuple[str, str], str] = {}

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


def repo_hooks(world: World) -> str:
    return f"/api/v2/namespaces/{world.org}/repositories/app/webhooks"


def body(world: World, principal: str) -> dict[str, Any]:
    return {"name": f"by {principal}", "url": URL}


def fresh_hook(world: World) -> str:
    created = world.admin_api("POST", repo_hooks(world), json={"name": "fresh", "url": URL})
    return str(created["id"])


def sample_delivery(world: World, hook: str) -> dict[str, Any]:
    sent: dict[str, Any] = world.admin_api("POST", f"/api/v2/webhooks/{hook}/test")
    return sent


def shared_hook(world: World) -> str:
    key = (world.server.url, "hook")
    if key not in _shared:
        _shared[key] = fresh_hook(world)
    return _shared[key]


def shared_delivery(world: World) -> str:
    key = (world.server.url, "delivery")
    if key not in _shared:
        _shared[key] = str(sample_delivery(world, shared_hook(world))["id"])
    return _shared[key]


def fresh_callback(world: World) -> str:
    """The callback path of a new test delivery of the shared webhook."""
    callback_url = json.loads(sample_delivery(world, shared_hook(world))["request"]["body"])["callback_url"]
    return "/api/v2/webhooks/callbacks/" + str(callback_url).rsplit("/", 1)[1]


def callback(world: World, principal: str, verb: str) -> httpx.Response:
    return world.api(principal, "POST", fresh_callback(world), json={"state": "success", "context": principal})


def on_repo(ok: int) -> Expect:
    return {**by(REPO_ADMINS, ok, denied=DENIED), STRANGER: HIDDEN}


def on_hook(ok: int) -> Expect:
    return by(REPO_ADMINS, ok, denied=HIDDEN)


row("GET", NS_HOOKS, api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/webhooks"), by({OWNER}, 200, denied=DENIED))
row(
    "POST",
    NS_HOOKS,
    api("POST", lambda w, p: f"/api/v2/namespaces/{w.org}/webhooks", body),
    by({OWNER}, 201, denied=DENIED),
)
row("GET", REPO_HOOKS, api("GET", lambda w, p: repo_hooks(w)), on_repo(200))
row("POST", REPO_HOOKS, api("POST", lambda w, p: repo_hooks(w), body), on_repo(201))
row("GET", HOOK, api("GET", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}"), on_hook(200))
row(
    "PATCH",
    HOOK,
    api("PATCH", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}", lambda w, p: {"name": f"by {p}"}),
    on_hook(200),
)
row("DELETE", HOOK, api("DELETE", lambda w, p: f"/api/v2/webhooks/{fresh_hook(w)}"), on_hook(204))
row(
    "POST",
    f"{HOOK}/secret",
    api("POST", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}/secret"),
    on_hook(200),
)
row("POST", f"{HOOK}/test", api("POST", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}/test"), on_hook(202))
row(
    "GET",
    f"{HOOK}/deliveries",
    api("GET", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}/deliveries"),
    on_hook(200),
)
row(
    "GET",
    DELIVERY,
    api("GET", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}/deliveries/{shared_delivery(w)}"),
    on_hook(200),
)
row(
    "POST",
    f"{DELIVERY}/redeliver",
    api("POST", lambda w, p: f"/api/v2/webhooks/{shared_hook(w)}/deliveries/{shared_delivery(w)}/redeliver"),
    on_hook(202),
)
row("POST", "/api/v2/webhooks/callbacks/{token}", callback, dict.fromkeys(PRINCIPALS, 200))
