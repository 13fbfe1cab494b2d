"""Matrix rows for SCIM provisioning (``/api/v2/scim/2.0``) and the organization's SCIM token
(``/api/v2/orgs/{org}/scim-token``).

The discovery documents are public. ``Users`` accept nothing but an organization's SCIM token: every principal of
the world — users, robots, organization and personal access tokens, owners included — is 401 there (SCIM's error
schema). What a SCIM token reaches (its own organization's provisioned users, never another's) is in
``tests/api/test_scim.py``. The token itself is the organization owners' to create, show and revoke."""

from __future__ import annotations

from tests.security.rows_api import DENIED, ORG_ADMINS, api, by
from tests.security.rows_oci import Call, Expect
from tests.security.world import PRINCIPALS, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
SCIM = "/api/v2/scim/2.0"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
NOBODY = by(set(), 401, denied=401)  # no principal of the world holds a SCIM token
# Public documents read no credentials: dead ones are not refused either.
PUBLIC: Expect = dict.fromkeys(PRINCIPALS, 200)


def row(method: str, template: str, call: Call, expect: Expect) -> None:
    ROWS[(method, template)] = (call, expect)


def fresh_scim_token(world: World) -> str:
    """The world organization with a SCIM token (made, or rotated, by the administrator)."""
    world.admin_api("POST", f"/api/v2/orgs/{world.org}/scim-token")
    return world.org


def _user(world: World, principal: str) -> dict[str, object]:
    return {"schemas": [USER_SCHEMA], "userName": f"{principal}@{world.org}.example.com"}


row("GET", f"{SCIM}/ServiceProviderConfig", api("GET", lambda w, p: f"{SCIM}/ServiceProviderConfig"), PUBLIC)
row("GET", f"{SCIM}/ResourceTypes", api("GET", lambda w, p: f"{SCIM}/ResourceTypes"), PUBLIC)
row("GET", f"{SCIM}/ResourceTypes/{{name}}", api("GET", lambda w, p: f"{SCIM}/ResourceTypes/User"), PUBLIC)
row("GET", f"{SCIM}/Schemas", api("GET", lambda w, p: f"{SCIM}/Schemas"), PUBLIC)
row("GET", f"{SCIM}/Schemas/{{schema_id}}", api("GET", lambda w, p: f"{SCIM}/Schemas/{USER_SCHEMA}"), PUBLIC)
row("GET", f"{SCIM}/Users", api("GET", lambda w, p: f"{SCIM}/Users"), NOBODY)
row("POST", f"{SCIM}/Users", api("POST", lambda w, p: f"{SCIM}/Users", _user), NOBODY)
row(
    "GET",
    f"{SCIM}/Users/{{user_id}}",
    api("GET", lambda w, p: f"{SCIM}/Users/{p}"),
    NOBODY,
)
row("PUT", f"{SCIM}/Users/{{user_id}}", api("PUT", lambda w, p: f"{SCIM}/Users/{p}", _user), NOBODY)
row(
    "PATCH",
    f"{SCIM}/Users/{{user_id}}",
    api(
        "PATCH",
        lambda w, p: f"{SCIM}/Users/{p}",
        lambda w, p: {"Operations": [{"op": "replace", "path": "active", "value": False}]},
    ),
    NOBODY,
)
row("DELETE", f"{SCIM}/Users/{{user_id}}", api("DELETE", lambda w, p: f"{SCIM}/Users/{p}"), NOBODY)

TOKEN = "/api/v2/orgs/{org}/scim-token"
row("POST", TOKEN, api("POST", lambda w, p: f"/api/v2/orgs/{w.org}/scim-token"), by(ORG_ADMINS, 201, denied=DENIED))
row(
    "GET",
    TOKEN,
    api("GET", lambda w, p: f"/api/v2/orgs/{fresh_scim_token(w)}/scim-token"),
    by(ORG_ADMINS, 200, denied=DENIED),
)
row(
    "DELETE",
    TOKEN,
    api("DELETE", lambda w, p: f"/api/v2/orgs/{fresh_scim_token(w)}/scim-token"),
    by(ORG_ADMINS, 204, denied=DENIED),
)
