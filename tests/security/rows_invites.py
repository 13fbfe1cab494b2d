"""Matrix rows for organization invites (``http/api/routes/invites.py``, ``http/web/invites.py``): the
organization's owners list, make, resend and cancel them (an invite addressed by its id is a 404 to whoever may
not manage it); any user signed in with their own password may accept or decline an invitation by e-mail
address through its link — not a personal access token, a robot or an organization access token (403). Each
principal answers an invite of its own to a fresh organization, so that accepting changes no membership the other
rows rely on."""

from __future__ import annotations

import uuid

import httpx

from tests.security.rows_api import DENIED, HIDDEN, ORG_ADMINS, USERS, api, by, fresh_org
from tests.security.rows_oci import Call, Expect
from tests.security.world import PRINCIPALS, World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
SIGNED_IN = {"owner", "team_reader", "team_writer", "team_admin", "other_org_member"}  # as rows_web.py


def fresh_invite(world: World, org: str | None = None) -> dict[str, object]:
    """An invite by e-mail address made by the administrator (the matrix's server has no SMTP server: the answer
    carries the link)."""
    body = {"org": org or world.org, "invitees": [f"m{uuid.uuid4().hex[:10]}@example.com"]}
    made = world.admin_api("POST", "/api/v2/invites/bulk", json=body)
    invite: dict[str, object] = made["invitees"][0]["invite"]
    return invite


def _token(world: World) -> str:
    return str(fresh_invite(world, fresh_org(world))["link"]).rsplit("/", 1)[1]


def _answer(answer: str) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        return world.api(principal, "POST", f"/api/v2/invites/{answer}", json={"token": _token(world)})

    return call


ROWS[("GET", "/api/v2/orgs/{org}/invites")] = (
    api("GET", lambda w, p: f"/api/v2/orgs/{w.org}/invites"),
    by(ORG_ADMINS, 200, denied=DENIED),
)
ROWS[("POST", "/api/v2/invites/bulk")] = (
    api("POST", lambda w, p: "/api/v2/invites/bulk", lambda w, p: {"org": w.org, "invitees": [f"{p}@example.com"]}),
    by(ORG_ADMINS, 202, denied=DENIED),
)
ROWS[("PATCH", "/api/v2/invites/{invite_id}/resend")] = (
    api("PATCH", lambda w, p: f"/api/v2/invites/{fresh_invite(w)['id']}/resend"),
    by(ORG_ADMINS, 204, denied=HIDDEN),
)
ROWS[("DELETE", "/api/v2/invites/{invite_id}")] = (
    api("DELETE", lambda w, p: f"/api/v2/invites/{fresh_invite(w)['id']}"),
    by(ORG_ADMINS, 204, denied=HIDDEN),
)
ROWS[("POST", "/api/v2/invites/accept")] = (_answer("accept"), by(USERS, 200, denied=DENIED))
ROWS[("POST", "/api/v2/invites/decline")] = (_answer("decline"), by(USERS, 204, denied=DENIED))


def _page(world: World, principal: str, method: str) -> httpx.Response:
    form = {"answer": "accept"} if method == "POST" else None
    return world.web(principal, method, f"/invites/{_token(world)}", form=form)


# The link's page shows anyone holding the link what it invites to; answering needs a signed-in user (who is
# then sent to the organization's page), else 401.
ROWS[("GET", "/invites/{token}")] = (_page, dict.fromkeys(PRINCIPALS, 200))
ROWS[("POST", "/invites/{token}")] = (_page, {p: 303 if p in SIGNED_IN else 401 for p in PRINCIPALS})
