"""Matrix rows for quotas and retention. A namespace's members read its quota; only site administrators (none of
the matrix's principals) set quotas or list every namespace's. Namespace retention policies are the owners' (the
owner's ``repo:read`` token does not administer the namespace); a repository's policy, runs and history need admin
on it, so the private ``app`` answers 404 to who cannot see it and 403 to its readers and writers. Every policy
the rows write has no rules (it keeps every tag) and every run is a dry run, so the rows never delete what other
rows use."""

from __future__ import annotations

from tests.security.rows_api import DENIED, MEMBERS, api, by, repo_level
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
OWNERS = {OWNER}
APP = "app"
KEEP_ALL = {"rules": [], "scheduled": False}


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


QUOTA = "/api/v2/namespaces/{ns}/quota"
row("GET", QUOTA, api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/quota"), by(MEMBERS, 200, denied=DENIED))
row(
    "PUT",
    QUOTA,
    api("PUT", lambda w, p: f"/api/v2/namespaces/{w.org}/quota", lambda w, p: {"hard": {"storage": -1}}),
    by(set(), 200, denied=DENIED),
)
row("GET", "/api/v2/quotas", api("GET", lambda w, p: "/api/v2/quotas"), by(set(), 200, denied=DENIED))


def namespace_policy(world: World) -> str:
    world.admin_api("PUT", f"/api/v2/namespaces/{world.org}/retention", json=KEEP_ALL)
    return f"/api/v2/namespaces/{world.org}/retention"


def repository_policy(world: World) -> str:
    path = f"/api/v2/namespaces/{world.org}/repositories/{APP}/retention"
    world.admin_api("PUT", path, json=KEEP_ALL)
    return path


NS_RETENTION = "/api/v2/namespaces/{ns}/retention"
row(
    "GET",
    NS_RETENTION,
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/retention"),
    by(OWNERS, 200, denied=DENIED),
)
row(
    "PUT",
    NS_RETENTION,
    api("PUT", lambda w, p: f"/api/v2/namespaces/{w.org}/retention", lambda w, p: KEEP_ALL),
    by(OWNERS, 200, denied=DENIED),
)
row("DELETE", NS_RETENTION, api("DELETE", lambda w, p: namespace_policy(w)), by(OWNERS, 204, denied=DENIED))

REPO_RETENTION = "/api/v2/namespaces/{ns}/repositories/{repo}/retention"


def _repo_path(world: World, suffix: str = "") -> str:
    return f"/api/v2/namespaces/{world.org}/repositories/{APP}/retention{suffix}"


row("GET", REPO_RETENTION, api("GET", lambda w, p: _repo_path(w)), repo_level(3, 200))
row("PUT", REPO_RETENTION, api("PUT", lambda w, p: _repo_path(w), lambda w, p: KEEP_ALL), repo_level(3, 200))
row("DELETE", REPO_RETENTION, api("DELETE", lambda w, p: repository_policy(w)), repo_level(3, 204))
row(
    "POST",
    f"{REPO_RETENTION}/runs",
    api("POST", lambda w, p: _repo_path(w, "/runs"), lambda w, p: {"dry_run": True}),
    repo_level(3, 200),
)
row("GET", f"{REPO_RETENTION}/runs", api("GET", lambda w, p: _repo_path(w, "/runs")), repo_level(3, 200))
