"""Matrix rows for vulnerability scanning (``http/api/routes/vulns.py``): a tag's report is authorized exactly as a
pull (whoever may not pull the private repository gets the 404 a missing one gets); a namespace's vulnerability
policy, allowlist and VEX documents are its owners' alone (403 for everyone else: the namespace is public).
Policies are set to ``off``, so the rows never change what other rows pull."""

from __future__ import annotations

import secrets

import httpx

from tests.security.rows_api import DENIED, api, bound, by, repo_level
from tests.security.rows_files import TAG, _get, _repo_path
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
OWNERS = {OWNER}


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


ROWS[("GET", "/api/v2/repositories/{ns}/{repo}/tags/{tag}/vulnerabilities")] = (
    _get(lambda w: f"{_repo_path(w)}/tags/{TAG}/vulnerabilities", {}),
    repo_level(1, 200),
)

for template, path in (
    ("/api/v2/namespaces/{ns}/vulnerability-policy", "/api/v2/namespaces/{org}/vulnerability-policy"),
    (
        "/api/v2/namespaces/{ns}/repositories/{repo}/vulnerability-policy",
        "/api/v2/namespaces/{org}/repositories/app/vulnerability-policy",
    ),
):
    row("GET", template, api("GET", bound(path, lambda w, p, t: t.format(org=w.org))), by(OWNERS, 200, denied=DENIED))
    row(
        "PUT",
        template,
        api("PUT", bound(path, lambda w, p, t: t.format(org=w.org)), lambda w, p: {"mode": "off", "severity": "high"}),
        by(OWNERS, 200, denied=DENIED),
    )

ALLOW = "/api/v2/namespaces/{ns}/vulnerability-allowlist"


def fresh_entry(world: World) -> str:
    ident = f"CVE-2099-{secrets.randbelow(10**6)}"
    world.admin_api(
        "POST", f"/api/v2/namespaces/{world.org}/vulnerability-allowlist", json={"vulnerability": ident, "reason": "r"}
    )
    return ident


row(
    "GET",
    ALLOW,
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/vulnerability-allowlist"),
    by(OWNERS, 200, denied=DENIED),
)
row(
    "POST",
    ALLOW,
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/vulnerability-allowlist",
        lambda w, p: {"vulnerability": f"CVE-2098-{secrets.randbelow(10**6)}", "reason": f"by {p}"},
    ),
    by(OWNERS, 201, denied=DENIED),
)
row(
    "DELETE",
    f"{ALLOW}/{{vulnerability}}",
    api("DELETE", lambda w, p: f"/api/v2/namespaces/{w.org}/vulnerability-allowlist/{fresh_entry(w)}"),
    by(OWNERS, 204, denied=DENIED),
)


def vex_document(ident: str) -> dict[str, object]:
    return {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": ident,
        "author": "matrix",
        "timestamp": "2026-01-01T00:00:00Z",
        "version": 1,
        "statements": [
            {
                "vulnerability": {"name": "CVE-2099-0001"},
                "products": [{"@id": "pkg:pypi/nothing"}],
                "status": "not_affected",
                "justification": "component_not_present",
            }
        ],
    }


def fresh_vex(world: World) -> str:
    ident = f"https://vex.example/{secrets.token_hex(6)}"
    world.admin_api("POST", f"/api/v2/namespaces/{world.org}/vex", json=vex_document(ident))
    return ident


VEX = "/api/v2/namespaces/{ns}/vex"
row("GET", VEX, api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/vex"), by(OWNERS, 200, denied=DENIED))
row(
    "POST",
    VEX,
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/vex",
        lambda w, p: vex_document(f"https://vex.example/{secrets.token_hex(6)}"),
    ),
    by(OWNERS, 201, denied=DENIED),
)


def _delete_vex(world: World, principal: str, verb: str) -> httpx.Response:
    return world.api(principal, "DELETE", f"/api/v2/namespaces/{world.org}/vex", params={"document": fresh_vex(world)})


row("DELETE", VEX, _delete_vex, by(OWNERS, 204, denied=DENIED))
