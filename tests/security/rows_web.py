"""Matrix rows for every route of the web hub: each principal browses as its browser would (signed in through the
login form with its password; robots, personal access tokens and dead accounts cannot sign in there and browse
as anonymous visitors). A private repository's pages are 404 to whoever may not pull it, as the API answers;
forms carry their CSRF token (the refusal without one is tested in ``tests/web``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx

from tests.security.rows_api import owner_token
from tests.security.rows_builds import main_rule, shared_build
from tests.security.rows_files import TAG as FILES_TAG
from tests.security.rows_files import files_image, push_files_image
from tests.security.rows_oci import LEVEL, Call, Expect
from tests.security.rows_webhooks import URL, shared_delivery, shared_hook
from tests.security.world import ANON, OWNER, PRINCIPALS, READER, TEAM_ADMIN, World
from tests.support.oci import push_image

# Those who sign in to the web hub with a password (the others browse anonymously).
SIGNED_IN = {"owner", "team_reader", "team_writer", "team_admin", "other_org_member"}
ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
_LIBRARY: dict[int, str] = {}


def _all(status: int) -> Expect:
    return dict.fromkeys(PRINCIPALS, status)


def _private(ok: int) -> Expect:
    """On the private repository: its readers who sign in get ``ok``; everyone else a 404."""
    return {p: ok if p in SIGNED_IN and LEVEL.get(p, 0) >= 1 else 404 for p in PRINCIPALS}


def _signed_in(ok: int, other: int) -> Expect:
    return {p: ok if p in SIGNED_IN else other for p in PRINCIPALS}


def _admin(ok: int, anonymous: int, *, readers: int = 403) -> Expect:
    """On the private repository's administration pages: its administrators who sign in get ``ok``, its other
    readers ``readers`` (403: they may see it), signed-in outsiders 404, visitors who are not signed in
    ``anonymous`` (303 to the sign-in page for a GET, 401 for a form)."""
    return {
        p: anonymous if p not in SIGNED_IN else ok if LEVEL.get(p, 0) >= 3 else readers if LEVEL.get(p, 0) else 404
        for p in PRINCIPALS
    }


def _post(path: Callable[[World], str], fields: Callable[[World, str], dict[str, str]] | None = None) -> Call:
    def call(world: World, principal: str, method: str) -> httpx.Response:
        return world.web(principal, method, path(world), form=fields(world, principal) if fields else None)

    return call


def library_repo(world: World) -> str:
    """A public ``library`` repository (made once per world): ``latest``, and the ``/etc/hello`` image tagged
    ``files``."""
    if id(world) not in _LIBRARY:
        name = f"web{id(world) % 100000}"
        with world.admin_v2() as client:
            push_image(client, name, "latest")
        push_files_image(world, name)
        world.admin_api("PATCH", f"/api/v2/namespaces/library/repositories/{name}", json={"is_private": False})
        _LIBRARY[id(world)] = name
    return _LIBRARY[id(world)]


def _get(path: Callable[[World], str]) -> Call:
    def call(world: World, principal: str, method: str) -> httpx.Response:
        return world.web(principal, method, path(world))

    return call


def _fixed(path: str) -> Callable[[World], str]:
    """The same ``path`` in every world (one a loop made: taken now, not when the row runs)."""
    return lambda w: path


def _short(world: World) -> str:
    return world.repo.split("/", 1)[1]


def row(method: str, path: str, call: Call, expect: Expect) -> None:
    ROWS[(method, path)] = (call, expect)


row("GET", "/", _get(lambda w: "/?q=app"), _all(200))
row("GET", "/u/{user}", _get(lambda w: f"/u/{w.users['owner']}"), _all(200))
row("GET", "/orgs/{org}", _get(lambda w: f"/orgs/{w.org}"), _all(200))
row("GET", "/r/{ns}/{repo}", _get(lambda w: f"/r/{w.org}/{_short(w)}"), _private(200))
row("GET", "/r/{ns}/{repo}/tags", _get(lambda w: f"/r/{w.org}/{_short(w)}/tags"), _private(200))
row("GET", "/r/{ns}/{repo}/tags/{tag}", _get(lambda w: f"/r/{w.org}/{_short(w)}/tags/latest"), _private(200))


def _files(world: World, rest: str) -> str:
    """A page of the image ``rows_files`` pushes to the private repository (``/etc/hello`` in its one layer)."""
    files_image(world)
    return f"/r/{world.org}/{_short(world)}/tags/{FILES_TAG}/{rest}"


row("GET", "/r/{ns}/{repo}/tags/{tag}/files", _get(lambda w: _files(w, "files")), _private(200))
row("GET", "/r/{ns}/{repo}/tags/{tag}/files/{path:path}", _get(lambda w: _files(w, "files/etc/hello")), _private(200))
row(
    "GET",
    "/r/{ns}/{repo}/tags/{tag}/download/{path:path}",
    _get(lambda w: _files(w, "download/etc/hello")),
    _private(200),
)
row(
    "GET",
    "/r/{ns}/{repo}/diff",
    _get(lambda w: _files(w, "").replace(f"/tags/{FILES_TAG}/", f"/diff?from={FILES_TAG}&to={FILES_TAG}")),
    _private(200),
)
row("GET", "/_/{repo}", _get(lambda w: f"/_/{library_repo(w)}"), _all(200))
row("GET", "/_/{repo}/tags", _get(lambda w: f"/_/{library_repo(w)}/tags"), _all(200))
row("GET", "/_/{repo}/tags/{tag}", _get(lambda w: f"/_/{library_repo(w)}/tags/latest"), _all(200))
# Starring needs a signed-in user (401 page otherwise) who may see the repository (else 404).
_STAR = {p: 401 if p not in SIGNED_IN else 303 if LEVEL.get(p, 0) >= 1 else 404 for p in PRINCIPALS}
row("POST", "/r/{ns}/{repo}/star", _get(lambda w: f"/r/{w.org}/{_short(w)}/star"), _STAR)
row("POST", "/r/{ns}/{repo}/unstar", _get(lambda w: f"/r/{w.org}/{_short(w)}/unstar"), _STAR)
row("GET", "/login", _get(lambda w: "/login"), _signed_in(303, 200))


def _login(world: World, principal: str, method: str) -> httpx.Response:
    name, secret = world.creds[principal] if principal != ANON else ("nobody", "wrong")
    return world.web(ANON, method, "/login", form={"username": name, "password": secret})


row("POST", "/login", _login, _signed_in(303, 401))
row("POST", "/logout", _get(lambda w: "/logout"), _all(303))
row("GET", "/static/{path}", _get(lambda w: "/static/site.css"), _all(200))

# Settings: the repository's (its administrators'), webhooks through WebhookService, the user's own tokens.
_SETTINGS = "/r/{ns}/{repo}/settings"
_HOOKS = "/r/{ns}/{repo}/webhooks"


def _repo_page(world: World, rest: str) -> str:
    return f"/r/{world.org}/{_short(world)}/{rest}"


row("GET", _SETTINGS, _get(lambda w: _repo_page(w, "settings")), _admin(200, 303))
row(
    "POST",
    _SETTINGS,
    _post(lambda w: _repo_page(w, "settings"), lambda w, p: {"visibility": "private"}),
    _admin(303, 401),
)
row("GET", _HOOKS, _get(lambda w: _repo_page(w, "webhooks")), _admin(200, 303))
row(
    "POST",
    _HOOKS,
    _post(lambda w: _repo_page(w, "webhooks"), lambda w, p: {"name": f"web by {p}", "url": URL}),
    _admin(200, 401),
)
row(
    "POST",
    f"{_HOOKS}/{{uuid}}/test",
    _post(lambda w: _repo_page(w, f"webhooks/{shared_hook(w)}/test")),
    _admin(303, 401, readers=404),
)
row(
    "POST",
    f"{_HOOKS}/{{uuid}}/deliveries/{{delivery}}/redeliver",
    _post(lambda w: _repo_page(w, f"webhooks/{shared_hook(w)}/deliveries/{shared_delivery(w)}/redeliver")),
    _admin(303, 401, readers=404),
)
row("GET", "/settings/tokens", _get(lambda w: "/settings/tokens"), _signed_in(200, 303))
row(
    "POST",
    "/settings/tokens",
    _post(lambda w: "/settings/tokens", lambda w, p: {"label": f"web {p}", "scope": "repo:read"}),
    _signed_in(200, 401),
)
# Another user's token is a 404, as in the API.
_OWN_TOKEN = {p: 303 if p == "owner" else 404 if p in SIGNED_IN else 401 for p in PRINCIPALS}
row("POST", "/settings/tokens/{uuid}/revoke", _post(lambda w: f"/settings/tokens/{owner_token(w)}/revoke"), _OWN_TOKEN)
row("POST", "/settings/tokens/{uuid}/delete", _post(lambda w: f"/settings/tokens/{owner_token(w)}/delete"), _OWN_TOKEN)

# Two-factor sign-in: each signed-in user's own (the matrix never turns it on: a wrong first code, and turning off
# or renewing what is not on, are 400); the code step of a sign-in with an unknown login_2fa_token is 401.
row("GET", "/settings/security", _get(lambda w: "/settings/security"), _signed_in(200, 303))
row("POST", "/settings/security/enrol", _post(lambda w: "/settings/security/enrol"), _signed_in(200, 401))
for _action in ("confirm", "recovery-codes", "disable"):
    row(
        "POST",
        f"/settings/security/{_action}",
        _post(_fixed(f"/settings/security/{_action}"), lambda w, p: {"code": "000000"}),
        _signed_in(400, 401),
    )
row(
    "POST",
    "/login/2fa",
    lambda w, p, m: w.web(ANON, m, "/login/2fa", form={"login_2fa_token": "unknown", "code": "000000"}),
    _all(401),
)

# Single sign-on (the matrix's server names a provider on a closed loopback port): starting a sign-in is the
# "unavailable" page for everyone; a callback that this browser did not start is refused; the CLI secret page is
# each signed-in user's own, and regenerating is 404 for users who have no single sign-on identity.
row("GET", "/login/oidc", _get(lambda w: "/login/oidc?next=/"), _all(502))
row("GET", "/login/oidc/callback", _get(lambda w: "/login/oidc/callback?state=forged&code=x"), _all(403))
row("GET", "/settings/cli-secret", _get(lambda w: "/settings/cli-secret"), _signed_in(200, 303))
row("POST", "/settings/cli-secret", _post(lambda w: "/settings/cli-secret"), _signed_in(404, 401))

# A tag's security page and its SBOM download: as its other pages (the SBOM waits out the background inventory).
row("GET", "/r/{ns}/{repo}/tags/{tag}/security", _get(lambda w: _files(w, "security")), _private(200))


def _sbom(world: World, principal: str, method: str) -> httpx.Response:
    path = _files(world, "sbom?format=spdx")
    for _ in range(150):  # 503 + Retry-After while the inventory is being computed after the push
        response = world.web(principal, method, path)
        if response.status_code != 503:
            return response
        time.sleep(0.2)
    return response


row("GET", "/r/{ns}/{repo}/tags/{tag}/sbom", _sbom, _private(200))

# Access: the repository's administrators see it; granting a team on an organization's repository is for the
# organization's owners (the team administrator is refused by the service: 403, shown on the page).
row("GET", "/r/{ns}/{repo}/access", _get(lambda w: _repo_page(w, "access")), _admin(200, 303))
_GRANT = {**_admin(303, 401), TEAM_ADMIN: 403}
row(
    "POST",
    "/r/{ns}/{repo}/access",
    _post(
        lambda w: _repo_page(w, "access"),
        lambda w, p: {"action": "grant_team", "team": w.teams[READER], "permission": "read"},
    ),
    _GRANT,
)
# New repositories and organizations: any signed-in user, in their own namespace / as the owner.
row("GET", "/repositories/new", _get(lambda w: "/repositories/new"), _signed_in(200, 303))


def _new_repo(world: World, principal: str) -> dict[str, str]:
    namespace = world.creds[principal][0] if principal in world.creds else "nobody"
    return {"namespace": namespace, "name": f"new{uuid.uuid4().hex[:10]}", "visibility": "private"}


row("POST", "/repositories/new", _post(lambda w: "/repositories/new", _new_repo), _signed_in(303, 401))
row("GET", "/orgs/new", _get(lambda w: "/orgs/new"), _signed_in(200, 303))
row(
    "POST",
    "/orgs/new",
    _post(lambda w: "/orgs/new", lambda w, p: {"name": f"o{uuid.uuid4().hex[:12]}"}),
    _signed_in(303, 401),
)
# An organization's settings: its owners; every other signed-in user may see the organization (403), visitors are
# sent to sign in (GET) or refused (a form).
_ORG_OWNER = {p: 200 if p == OWNER else 403 if p in SIGNED_IN else 303 for p in PRINCIPALS}
row("GET", "/orgs/{org}/settings", _get(lambda w: f"/orgs/{w.org}/settings"), _ORG_OWNER)
row(
    "POST",
    "/orgs/{org}/settings",
    _post(
        lambda w: f"/orgs/{w.org}/settings",
        lambda w, p: {"action": "set_role", "username": w.users[OWNER], "role": "owner"},
    ),
    {p: 303 if p == OWNER else 403 if p in SIGNED_IN else 401 for p in PRINCIPALS},
)

# The build status badge: as a pull (a private repository's badge shows only to who may pull it).
row("GET", "/r/{ns}/{repo}/badge.svg", _get(lambda w: _repo_page(w, "badge.svg")), _private(200))


# The builds pages (through BuildService): the history and a build's log as a pull; "Build now" for writers.
def _writers(ok: int) -> Expect:
    return {
        p: 401 if p not in SIGNED_IN else ok if LEVEL.get(p, 0) >= 2 else 403 if LEVEL.get(p, 0) else 404
        for p in PRINCIPALS
    }


def _build_now(world: World, principal: str, method: str) -> httpx.Response:
    main_rule(world)  # linked, with a rule for main (a row of rows_builds may have unlinked it)
    return world.web(principal, method, _repo_page(world, "builds"), form={"ref": "main"})


row("GET", "/r/{ns}/{repo}/builds", _get(lambda w: _repo_page(w, "builds")), _private(200))
row("POST", "/r/{ns}/{repo}/builds", _build_now, _writers(303))
row("GET", "/r/{ns}/{repo}/builds/{build}", _get(lambda w: _repo_page(w, f"builds/{shared_build(w)}")), _private(200))

# Lifecycle (issue 18): a repository's page is its administrators' (a dry run is the form: it deletes nothing); a
# namespace's page and its audit log are its owners' (403 to every other signed-in user: namespaces are public); the
# site-wide audit log is the site administrators' (none among the matrix's principals). The namespace form saves
# the retention options only, with the rules the policy already has (the lifecycle rows' policies keep every tag).
row("GET", "/r/{ns}/{repo}/lifecycle", _get(lambda w: _repo_page(w, "lifecycle")), _admin(200, 303))
row(
    "POST",
    "/r/{ns}/{repo}/lifecycle",
    _post(lambda w: _repo_page(w, "lifecycle"), lambda w, p: {"action": "dry_run"}),
    _admin(200, 401),
)
row("GET", "/namespaces/{ns}/lifecycle", _get(lambda w: f"/namespaces/{w.org}/lifecycle"), _ORG_OWNER)
row(
    "POST",
    "/namespaces/{ns}/lifecycle",
    _post(lambda w: f"/namespaces/{w.org}/lifecycle", lambda w, p: {"action": "retention_options"}),
    {p: 303 if p == OWNER else 403 if p in SIGNED_IN else 401 for p in PRINCIPALS},
)
row("GET", "/namespaces/{ns}/audit", _get(lambda w: f"/namespaces/{w.org}/audit"), _ORG_OWNER)
# Robots (issue 14): the organization's owners; a new robot without permissions is shown with its secret (200).
row("GET", "/orgs/{org}/robots", _get(lambda w: f"/orgs/{w.org}/robots"), _ORG_OWNER)
row(
    "POST",
    "/orgs/{org}/robots",
    _post(lambda w: f"/orgs/{w.org}/robots", lambda w, p: {"action": "create", "name": f"w{uuid.uuid4().hex[:10]}"}),
    {p: 200 if p == OWNER else 403 if p in SIGNED_IN else 401 for p in PRINCIPALS},
)


# ``/_/<name>/…``: the library repository's pages under their short names (app.py, ``LIBRARY_ALIASES``). The
# repository is public: its pages answer everyone, its administration pages refuse every signed-in principal (none
# administers ``library``; 403: they may see it) and send visitors to sign in.
def _library(rest: str) -> Callable[[World], str]:
    return lambda w: f"/_/{library_repo(w)}/{rest}"


def _library_sbom(world: World, principal: str, method: str) -> httpx.Response:
    path = f"/_/{library_repo(world)}/tags/{FILES_TAG}/sbom?format=spdx"
    for _ in range(150):  # 503 + Retry-After while the inventory is being computed after the push
        response = world.web(principal, method, path)
        if response.status_code != 503:
            return response
        time.sleep(0.2)
    return response


for _rest, _path in (
    ("tags/{tag}/files", f"tags/{FILES_TAG}/files"),
    ("tags/{tag}/files/{path:path}", f"tags/{FILES_TAG}/files/etc/hello"),
    ("tags/{tag}/download/{path:path}", f"tags/{FILES_TAG}/download/etc/hello"),
    ("tags/{tag}/security", f"tags/{FILES_TAG}/security"),
    ("diff", f"diff?from={FILES_TAG}&to={FILES_TAG}"),
    ("badge.svg", "badge.svg"),
    ("builds", "builds"),
):
    row("GET", f"/_/{{repo}}/{_rest}", _get(_library(_path)), _all(200))
row("GET", "/_/{repo}/tags/{tag}/sbom", _library_sbom, _all(200))
for _rest in ("settings", "webhooks", "access", "lifecycle", "trust"):
    row("GET", f"/_/{{repo}}/{_rest}", _get(_library(_rest)), _signed_in(403, 303))

# The site-admin area: site administrators only (none among the principals). Every other signed-in user finds
# nothing there (404); visitors are sent to sign in (GET) or refused (a form). The forms would change something
# for an administrator: a user to disable, a dead job, a collection.
for _path in ("/admin/users", "/admin/storage", "/admin/jobs", "/admin/gc", "/admin/audit"):
    row("GET", _path, _get(_fixed(_path)), _signed_in(404, 303))
row(
    "POST",
    "/admin/users",
    _post(lambda w: "/admin/users", lambda w, p: {"action": "disable", "username": w.users[OWNER]}),
    _signed_in(404, 401),
)
row("POST", "/admin/jobs/{job}/retry", _post(lambda w: "/admin/jobs/1/retry"), _signed_in(404, 401))
row("POST", "/admin/gc", _post(lambda w: "/admin/gc", lambda w, p: {"action": "dry_run"}), _signed_in(404, 401))
# Self sign-up is off unless allow_signup is set (it is not in the matrix's world): no such page for anyone.
row("GET", "/signup", _get(lambda w: "/signup"), _all(404))
row(
    "POST",
    "/signup",
    _post(
        lambda w: "/signup", lambda w, p: {"username": "signup" + p[:8], "email": "s@example.com", "password": "x" * 16}
    ),
    _all(404),
)
