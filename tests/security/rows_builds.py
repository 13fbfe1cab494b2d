"""Matrix rows for automated builds (``http/api/routes/builds.py``) on the private repository ``app``: admin on it (the
owner, the admins' team) links a git remote and manages rules; write lists rules, starts and cancels builds; read lists
builds and reads their logs. A stranger gets the 404 of a missing repository; a reader asking for more a 403. The link
points at a port nothing listens on, so the builds the rows start fail quickly and harmlessly.

The inbound triggers take no credentials: a push webhook signed with the link's secret and the trigger URL with its
token are accepted from anyone, whatever credentials come with them (202; no rule matches the ref they name, so nothing
is built) — the signature or the token is the capability. Each call re-links the repository as the administrator first
and signs with the new secret (re-linking keeps the rules)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx

from tests.security.rows_api import api, repo_level
from tests.security.rows_oci import Call, Expect
from tests.security.world import PRINCIPALS, World

URL = "git://127.0.0.1:9/none.git"
ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
BASE = "/api/v2/repositories/{ns}/{repo}"
_shared: dict[tuple[str, str], str] = {}


def base(world: World) -> str:
    ns, name = world.repo.split("/", 1)
    return f"/api/v2/repositories/{ns}/{name}"


def relink(world: World) -> dict[str, Any]:
    """(Re-)link ``app`` as the administrator; the answer with its new webhook secret and trigger URL."""
    created: dict[str, Any] = world.admin_api("POST", f"{base(world)}/build-link", json={"url": URL})
    return created


def main_rule(world: World) -> str:
    """The id of a rule building branch main into ``latest`` (made when missing: an unlink drops rules)."""
    relink(world)
    rules = world.admin_api("GET", f"{base(world)}/build-rules")
    for rule in rules:
        if rule["source_name"] == "main":
            return str(rule["id"])
    made = world.admin_api("POST", f"{base(world)}/build-rules", json={"source_name": "main", "tag": "latest"})
    return str(made["id"])


def fresh_rule(world: World) -> str:
    main_rule(world)
    made = world.admin_api("POST", f"{base(world)}/build-rules", json={"source_name": "other", "tag": "other"})
    return str(made["id"])


def shared_build(world: World) -> str:
    key = (world.server.url, "build")
    if key not in _shared:
        main_rule(world)
        queued = world.admin_api("POST", f"{base(world)}/builds", json={"source_name": "main"})
        _shared[key] = str(queued["builds"][0])
    return _shared[key]


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, BASE + template)] = (call, expect)


def with_link(method: str, suffix: str, body: Any = None) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        relink(world)
        return world.api(principal, method, base(world) + suffix, json=body)

    return call


def signed_push(world: World, principal: str, verb: str) -> httpx.Response:
    secret = relink(world)["webhook_secret"]
    body = json.dumps({"ref": "refs/heads/no-rule-matches", "after": "a" * 40}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"}
    return world.api(principal, "POST", f"{base(world)}/build-link/webhook", content=body, headers=headers)


def trigger_call(world: World, principal: str, verb: str) -> httpx.Response:
    # The URL as the link's answer shows it: Docker Hub's, with its trailing slash (the API routes it without).
    path = "/api/v2/" + relink(world)["trigger_url"].split("/api/v2/", 1)[1]
    return world.api(principal, "POST", path, json={"source_type": "Branch", "source_name": "no-rule-matches"})


row(
    "POST",
    "/build-link",
    api("POST", lambda w, p: f"{base(w)}/build-link", lambda w, p: {"url": URL}),
    repo_level(3, 201),
)
row("GET", "/build-link", with_link("GET", "/build-link"), repo_level(3, 200))
row("DELETE", "/build-link", with_link("DELETE", "/build-link"), repo_level(3, 204))
row("POST", "/build-link/webhook", signed_push, dict.fromkeys(PRINCIPALS, 202))
row("POST", "/trigger/{token}/call", trigger_call, dict.fromkeys(PRINCIPALS, 202))
row("GET", "/build-rules", with_link("GET", "/build-rules"), repo_level(2, 200))
row(
    "POST",
    "/build-rules",
    with_link("POST", "/build-rules", {"source_type": "Tag", "source_name": "/^v(.*)$/", "tag": "{\\1}"}),
    repo_level(3, 201),
)
row(
    "PUT",
    "/build-rules/{rule}",
    api(  # main's rule as it is: the row leaves nothing behind
        "PUT",
        lambda w, p: f"{base(w)}/build-rules/{main_rule(w)}",
        lambda w, p: {"source_name": "main", "tag": "latest"},
    ),
    repo_level(3, 200),
)
row(
    "DELETE",
    "/build-rules/{rule}",
    api("DELETE", lambda w, p: f"{base(w)}/build-rules/{fresh_rule(w)}"),
    repo_level(3, 204),
)
row("GET", "/builds", api("GET", lambda w, p: f"{base(w)}/builds"), repo_level(1, 200))
row(
    "POST",
    "/builds",
    lambda w, p, verb: (main_rule(w), w.api(p, "POST", f"{base(w)}/builds", json={"source_name": "main"}))[1],
    repo_level(2, 202),
)
row("GET", "/builds/{build}", api("GET", lambda w, p: f"{base(w)}/builds/{shared_build(w)}"), repo_level(1, 200))
row(
    "POST",
    "/builds/{build}/cancel",
    api("POST", lambda w, p: f"{base(w)}/builds/{shared_build(w)}/cancel"),
    repo_level(2, 200),
)
row(
    "GET",
    "/builds/{build}/logs",
    api("GET", lambda w, p: f"{base(w)}/builds/{shared_build(w)}/logs"),
    repo_level(1, 200),
)
