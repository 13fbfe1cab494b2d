"""Matrix rows for the web hub's trust, replication, pull-through cache and build-settings pages (issues 14, 15
and 19). Each page asks the service of the matching Hub API routes, so the statuses are the API's, seen through a
browser: a namespace's trust and replication pages are its owners' (403 to every other signed-in user: namespaces
are public); a repository's Trust tab shows only to who may see the repository (404 otherwise) and is the
namespace owners' (403 to its other readers); ``/admin/proxies`` is the site administrators' (none among the
matrix's principals); the Builds page's settings form is the repository's administrators'. Visitors who are not
signed in are sent to sign in (GET, 303) or refused (a form, 401)."""

from __future__ import annotations

from tests.security.rows_builds import fresh_rule as fresh_build_rule
from tests.security.rows_oci import LEVEL, Call, Expect
from tests.security.rows_replication import fresh_rule, fresh_run
from tests.security.rows_web import SIGNED_IN, _admin, _get, _post, _repo_page, _signed_in
from tests.security.world import OWNER, PRINCIPALS

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}


def row(method: str, path: str, call: Call, expect: Expect) -> None:
    ROWS[(method, path)] = (call, expect)


def _namespace_owner(ok: int, anonymous: int) -> Expect:
    return {p: ok if p == OWNER else 403 if p in SIGNED_IN else anonymous for p in PRINCIPALS}


def _repository_owner(ok: int, anonymous: int) -> Expect:
    """The private repository's Trust tab: the namespace's owner; its other readers 403; outsiders 404."""
    return {
        p: anonymous if p not in SIGNED_IN else ok if p == OWNER else 403 if LEVEL.get(p, 0) else 404
        for p in PRINCIPALS
    }


_POLICY_OFF = {"action": "set_policy", "mode": "off"}
row("GET", "/namespaces/{ns}/trust", _get(lambda w: f"/namespaces/{w.org}/trust"), _namespace_owner(200, 303))
row(
    "POST",
    "/namespaces/{ns}/trust",
    _post(lambda w: f"/namespaces/{w.org}/trust", lambda w, p: _POLICY_OFF),
    _namespace_owner(303, 401),
)
row("GET", "/r/{ns}/{repo}/trust", _get(lambda w: _repo_page(w, "trust")), _repository_owner(200, 303))
row(
    "POST",
    "/r/{ns}/{repo}/trust",
    _post(lambda w: _repo_page(w, "trust"), lambda w, p: _POLICY_OFF),
    _repository_owner(303, 401),
)

row(
    "GET",
    "/namespaces/{ns}/replication",
    _get(lambda w: f"/namespaces/{w.org}/replication"),
    _namespace_owner(200, 303),
)
row(
    "POST",
    "/namespaces/{ns}/replication",
    _post(lambda w: f"/namespaces/{w.org}/replication", lambda w, p: {"action": "run", "rule": fresh_rule(w)}),
    _namespace_owner(303, 401),
)
row(
    "GET",
    "/namespaces/{ns}/replication/runs/{run}",
    _get(lambda w: f"/namespaces/{w.org}/replication/runs/{fresh_run(w)}"),
    _namespace_owner(200, 303),
)

row("GET", "/admin/proxies", _get(lambda w: "/admin/proxies"), _signed_in(403, 303))
row(
    "POST",
    "/admin/proxies",
    _post(
        lambda w: "/admin/proxies",
        lambda w, p: {"action": "add", "namespace": w.other_org, "upstream_url": "http://127.0.0.1:9"},
    ),
    _signed_in(403, 401),
)

# Removing a rule made for the call: the repository's administrators; its writers and readers 403.
row(
    "POST",
    "/r/{ns}/{repo}/builds/settings",
    _post(
        lambda w: _repo_page(w, "builds/settings"), lambda w, p: {"action": "remove_rule", "rule": fresh_build_rule(w)}
    ),
    _admin(303, 401),
)
