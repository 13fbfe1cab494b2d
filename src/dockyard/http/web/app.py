"""The web hub application (Starlette): its routes, static files, and the one mapping of domain errors to error
pages. Mounted by the composition root for everything that is not ``/v2``, ``/api`` or ``/v1``.

Routes are thin: each reads the request, calls the services (``WebServices``: the Hub API's service objects and
its authorizer) and renders a template. A private repository's pages answer 404 to whoever may not pull it, as
the Hub API does: the services raise ``NotFound`` for it, and a 404 page is what every ``NotFound`` becomes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from dockyard.core.names import LIBRARY
from dockyard.errors import (
    Conflict,
    Denied,
    DomainError,
    Invalid,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthorized,
    Unsupported,
)
from dockyard.http.web import (
    access,
    admin,
    admin_system,
    audit,
    badge,
    build_settings,
    builds,
    diff,
    explore,
    files,
    invites,
    lifecycle,
    namespaces,
    oidc,
    orgs,
    proxies,
    replication,
    repository,
    robots,
    scans,
    settings,
    signin,
    signup,
    trust,
    two_factor,
    webhooks,
)
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.render import page
from dockyard.http.web.services import WebServices

log = logging.getLogger("dockyard.web")
STATIC = Path(__file__).parent / "static"

ROUTES: list[BaseRoute] = [
    Route("/", explore.home, methods=["GET"], name="home"),
    Route("/u/{user}", explore.user_page, methods=["GET"], name="user"),
    Route("/orgs/new", orgs.new_org_form, methods=["GET"], name="org_new"),
    Route("/orgs/new", orgs.create_org, methods=["POST"], name="org_new_post"),
    Route("/orgs/{org}", explore.org_page, methods=["GET"], name="org"),
    Route("/_/{repo}", repository.library_page, methods=["GET"], name="library"),
    Route("/_/{repo}/tags", repository.library_tags, methods=["GET"], name="library_tags"),
    Route("/_/{repo}/tags/{tag}", repository.library_tag, methods=["GET"], name="library_tag"),
    Route("/r/{ns}/{repo}", repository.repo_page, methods=["GET"], name="repo"),
    Route("/r/{ns}/{repo}/tags", repository.tags_page, methods=["GET"], name="tags"),
    Route("/r/{ns}/{repo}/tags/{tag}", repository.tag_page, methods=["GET"], name="tag"),
    Route("/r/{ns}/{repo}/tags/{tag}/files", files.browse, methods=["GET"], name="files_root"),
    Route("/r/{ns}/{repo}/tags/{tag}/files/{path:path}", files.browse, methods=["GET"], name="files"),
    Route("/r/{ns}/{repo}/tags/{tag}/download/{path:path}", files.download, methods=["GET"], name="download"),
    Route("/r/{ns}/{repo}/tags/{tag}/security", scans.security_page, methods=["GET"], name="security"),
    Route("/r/{ns}/{repo}/tags/{tag}/sbom", scans.sbom_download, methods=["GET"], name="sbom"),
    Route("/r/{ns}/{repo}/diff", diff.diff_page, methods=["GET"], name="diff"),
    Route("/r/{ns}/{repo}/badge.svg", badge.build_badge, methods=["GET"], name="build_badge"),
    Route("/r/{ns}/{repo}/builds", builds.builds_page, methods=["GET"], name="builds"),
    Route("/r/{ns}/{repo}/builds", builds.build_now, methods=["POST"], name="builds_post"),
    Route(
        "/r/{ns}/{repo}/builds/settings", build_settings.save_build_settings, methods=["POST"], name="builds_settings"
    ),
    Route("/r/{ns}/{repo}/builds/{build}", builds.build_page, methods=["GET"], name="build"),
    Route("/r/{ns}/{repo}/settings", settings.repo_settings, methods=["GET"], name="repo_settings"),
    Route("/r/{ns}/{repo}/settings", settings.save_repo_settings, methods=["POST"], name="repo_settings_post"),
    Route("/r/{ns}/{repo}/webhooks", webhooks.webhooks_page, methods=["GET"], name="webhooks"),
    Route("/r/{ns}/{repo}/webhooks", webhooks.add_webhook, methods=["POST"], name="webhooks_post"),
    Route("/r/{ns}/{repo}/webhooks/{uuid}/test", webhooks.test_webhook, methods=["POST"], name="webhook_test"),
    Route(
        "/r/{ns}/{repo}/webhooks/{uuid}/deliveries/{delivery}/redeliver",
        webhooks.redeliver,
        methods=["POST"],
        name="webhook_redeliver",
    ),
    Route("/r/{ns}/{repo}/access", access.repo_access, methods=["GET"], name="repo_access"),
    Route("/r/{ns}/{repo}/access", access.save_repo_access, methods=["POST"], name="repo_access_post"),
    Route("/repositories/new", access.new_repo_form, methods=["GET"], name="repo_new"),
    Route("/repositories/new", access.create_repo, methods=["POST"], name="repo_new_post"),
    Route("/orgs/{org}/settings", orgs.org_settings, methods=["GET"], name="org_settings"),
    Route("/orgs/{org}/settings", orgs.save_org_settings, methods=["POST"], name="org_settings_post"),
    Route("/r/{ns}/{repo}/lifecycle", lifecycle.repo_lifecycle, methods=["GET"], name="repo_lifecycle"),
    Route("/r/{ns}/{repo}/lifecycle", lifecycle.save_repo_lifecycle, methods=["POST"], name="repo_lifecycle_post"),
    Route("/namespaces/{ns}/lifecycle", namespaces.namespace_lifecycle, methods=["GET"], name="ns_lifecycle"),
    Route(
        "/namespaces/{ns}/lifecycle", namespaces.save_namespace_lifecycle, methods=["POST"], name="ns_lifecycle_post"
    ),
    Route("/namespaces/{ns}/audit", audit.namespace_audit, methods=["GET"], name="ns_audit"),
    Route("/admin/audit", audit.site_audit, methods=["GET"], name="site_audit"),
    Route("/namespaces/{ns}/trust", trust.namespace_trust, methods=["GET"], name="ns_trust"),
    Route("/namespaces/{ns}/trust", trust.save_namespace_trust, methods=["POST"], name="ns_trust_post"),
    Route("/r/{ns}/{repo}/trust", trust.repo_trust, methods=["GET"], name="repo_trust"),
    Route("/r/{ns}/{repo}/trust", trust.save_repo_trust, methods=["POST"], name="repo_trust_post"),
    Route("/namespaces/{ns}/replication", replication.replication_page, methods=["GET"], name="replication"),
    Route("/namespaces/{ns}/replication", replication.save_replication, methods=["POST"], name="replication_post"),
    Route("/namespaces/{ns}/replication/runs/{run}", replication.run_page, methods=["GET"], name="replication_run"),
    Route("/admin/proxies", proxies.proxies_page, methods=["GET"], name="proxies"),
    Route("/admin/proxies", proxies.save_proxies, methods=["POST"], name="proxies_post"),
    Route("/admin/users", admin.users_page, methods=["GET"], name="admin_users"),
    Route("/admin/users", admin.save_users, methods=["POST"], name="admin_users_post"),
    Route("/admin/storage", admin_system.storage_page, methods=["GET"], name="admin_storage"),
    Route("/admin/jobs", admin_system.jobs_page, methods=["GET"], name="admin_jobs"),
    Route("/admin/jobs/{job}/retry", admin_system.retry_job, methods=["POST"], name="admin_job_retry"),
    Route("/admin/gc", admin_system.gc_page, methods=["GET"], name="admin_gc"),
    Route("/admin/gc", admin_system.start_gc, methods=["POST"], name="admin_gc_post"),
    Route("/orgs/{org}/robots", robots.robots_page, methods=["GET"], name="robots"),
    Route("/orgs/{org}/robots", robots.save_robots, methods=["POST"], name="robots_post"),
    Route("/invites/{token}", invites.invite_page, methods=["GET"], name="invite"),
    Route("/invites/{token}", invites.answer_invite, methods=["POST"], name="invite_post"),
    Route("/settings/tokens", settings.tokens_page, methods=["GET"], name="tokens"),
    Route("/settings/security", two_factor.security_page, methods=["GET"], name="security_settings"),
    Route("/settings/security/enrol", two_factor.enrol, methods=["POST"], name="two_factor_enrol"),
    Route("/settings/security/confirm", two_factor.confirm, methods=["POST"], name="two_factor_confirm"),
    Route("/settings/security/recovery-codes", two_factor.renew_codes, methods=["POST"], name="two_factor_codes"),
    Route("/settings/security/disable", two_factor.disable, methods=["POST"], name="two_factor_disable"),
    Route("/settings/tokens", settings.create_token, methods=["POST"], name="tokens_post"),
    Route("/settings/tokens/{uuid}/revoke", settings.revoke_token, methods=["POST"], name="token_revoke"),
    Route("/settings/tokens/{uuid}/delete", settings.delete_token, methods=["POST"], name="token_delete"),
    Route("/r/{ns}/{repo}/star", repository.star, methods=["POST"], name="star"),
    Route("/r/{ns}/{repo}/unstar", repository.unstar, methods=["POST"], name="unstar"),
    Route("/login", signin.login_form, methods=["GET"], name="login"),
    Route("/login", signin.login, methods=["POST"], name="login_post"),
    Route("/login/2fa", signin.login_second_factor, methods=["POST"], name="login_2fa_post"),
    Route("/login/oidc", oidc.start, methods=["GET"], name="oidc_start"),
    Route("/login/oidc/callback", oidc.callback, methods=["GET"], name="oidc_callback"),
    Route("/settings/cli-secret", oidc.cli_secret_page, methods=["GET"], name="cli_secret"),
    Route("/settings/cli-secret", oidc.regenerate_cli_secret, methods=["POST"], name="cli_secret_post"),
    Route("/logout", signin.logout, methods=["POST"], name="logout"),
    Route("/signup", signup.signup_form, methods=["GET"], name="signup"),
    Route("/signup", signup.sign_up, methods=["POST"], name="signup_post"),
    Mount("/static", StaticFiles(directory=STATIC), name="static"),
]

# The repository pages that ``/_/<name>/…`` also serves for ``library/<name>`` (the overview, tags and tag pages
# have handlers of their own, which redirect ``/r/library/…`` to ``/_/…``). Pages only: their forms post to
# ``/r/library/<name>/…``.
LIBRARY_ALIASES = (
    "files_root",
    "files",
    "download",
    "security",
    "sbom",
    "diff",
    "build_badge",
    "builds",
    "repo_settings",
    "webhooks",
    "repo_access",
    "repo_lifecycle",
    "repo_trust",
)
REPOSITORY_PREFIX = "/r/{ns}/{repo}/"


def _library_endpoint(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def library(request: Request) -> Response:
        request.scope["path_params"] = {**request.path_params, "ns": LIBRARY}
        return await endpoint(request)

    return library


def library_aliases(routes: list[BaseRoute], names: tuple[str, ...] = LIBRARY_ALIASES) -> list[Route]:
    """``/_/{repo}/<rest>`` for each named ``/r/{ns}/{repo}/<rest>`` page: the same handler, namespace ``library``."""
    by_name = {route.name: route for route in routes if isinstance(route, Route)}
    aliases = []
    for name in names:
        route = by_name[name]
        if not route.path.startswith(REPOSITORY_PREFIX) or route.methods != {"GET", "HEAD"}:
            raise ValueError(f"{route.path}: only a repository's pages have library aliases")
        path = "/_/{repo}/" + route.path.removeprefix(REPOSITORY_PREFIX)
        aliases.append(Route(path, _library_endpoint(route.endpoint), methods=["GET"], name=f"library_{name}"))
    return aliases


ROUTES.extend(library_aliases(ROUTES))

_STATUS = {
    NotFound: (404, "Not found"),
    Invalid: (400, "Bad request"),
    Unsupported: (400, "Not supported"),
    TooLarge: (413, "Too large"),
    Denied: (403, "Forbidden"),
    Conflict: (409, "Conflict"),
    RateLimited: (429, "Too many attempts"),
}


async def domain_error(request: Request, exc: Exception) -> Response:
    """Every service error as a page: nothing about a hidden resource beyond "not found"."""
    current = await visit_of(request)
    if isinstance(exc, Unauthorized):
        if request.method == "GET":
            return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
        status, title, message = 401, "Sign in required", "Sign in to do that."
    else:
        status, title = next(((s, t) for cls, (s, t) in _STATUS.items() if isinstance(exc, cls)), (500, "Error"))
        message = "There is nothing here, or you may not see it." if status == 404 else str(exc)
    response = page(request, current, "error.html", status=status, title=title, message=message)
    if isinstance(exc, RateLimited) and exc.retry_after:
        response.headers["retry-after"] = str(int(exc.retry_after))
    return response


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    current = await visit_of(request)
    title = "Not found" if exc.status_code == 404 else "Error"
    message = "There is nothing here." if exc.status_code == 404 else str(exc.detail)
    return page(request, current, "error.html", status=exc.status_code, title=title, message=message)


def web_app(services: WebServices | None = None) -> Starlette:
    app = Starlette(
        routes=ROUTES,
        exception_handlers={DomainError: domain_error, HTTPException: http_error},
    )
    if services is not None:
        app.state.web = services
    return app


def served_routes(app: Starlette) -> set[tuple[str, str]]:
    """(method, path template) of every page and form action (static files as ``GET /static/{path}``)."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Route):
            found.update((method, route.path) for method in route.methods or () if method != "HEAD")
        elif isinstance(route, Mount):
            found.add(("GET", f"{route.path}/{{path}}"))
    return found


__all__ = ["WebServices", "served_routes", "services_of", "web_app"]
