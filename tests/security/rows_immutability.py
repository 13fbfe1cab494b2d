"""Matrix rows for tag immutability (``http/api/routes/immutability.py``): a repository's immutable tags and the
verify call are its admins' (Docker Hub: administrative privileges), as its PATCH is; a namespace's own rules are
its owners' alone (403 for everyone else: the namespace is public). The rows leave immutability off and the
namespace without rules, so they never change what other rows push or delete."""

from __future__ import annotations

from tests.security.rows_api import APP, DENIED, api, by, repo_level
from tests.security.rows_oci import Call, Expect
from tests.security.world import OWNER

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
REPO = "/api/v2/namespaces/{ns}/repositories/{repo}"
RULES = "/api/v2/namespaces/{ns}/immutability-rules"

ROWS[("PATCH", f"{REPO}/immutabletags")] = (
    api(
        "PATCH",
        lambda w, p: f"/api/v2/namespaces/{w.org}/repositories/{APP}/immutabletags",
        lambda w, p: {"immutable_tags": False, "immutable_tags_rules": [f"by-{p}.*"]},
    ),
    repo_level(3, 200),
)
ROWS[("POST", f"{REPO}/immutabletags/verify")] = (
    api(
        "POST",
        lambda w, p: f"/api/v2/namespaces/{w.org}/repositories/{APP}/immutabletags/verify",
        lambda w, p: {"regex": ".*"},
    ),
    repo_level(3, 200),
)
ROWS[("GET", RULES)] = (
    api("GET", lambda w, p: f"/api/v2/namespaces/{w.org}/immutability-rules"),
    by({OWNER}, 200, denied=DENIED),
)
ROWS[("PUT", RULES)] = (
    api("PUT", lambda w, p: f"/api/v2/namespaces/{w.org}/immutability-rules", lambda w, p: {"rules": []}),
    by({OWNER}, 200, denied=DENIED),
)
