"""Settings pages: a repository's settings (``/r/<ns>/<repo>/settings``: description, README, visibility) and the
signed-in user's personal access tokens (``/settings/tokens``: list, create — the secret shown once, on the page
that answers the form, never in a URL —, revoke, delete).

They call the services the Hub API calls — ``RepositoryService.update`` (the one repository service) and
``AccessTokenService`` — which decide who may do what; a page never decides it. The settings tab and the GET of
the settings form follow ``RepositoryView.permissions`` (the authorizer's levels, as the API reports them). Every
form carries the CSRF token (``security.form`` refuses a POST without it before anything is done).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.accounts.access_tokens import MAX_LABEL_LENGTH
from dockyard.authz.principal import TOKEN_SCOPES
from dockyard.core.paging import PageRequest
from dockyard.errors import Denied, Invalid, Unauthorized
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.paging import page_number, pager
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.snapshots import RepositoryView

TOKENS_PER_PAGE = 25
# A README of the Hub's 25,000 characters, percent-encoded (up to 9 bytes a character), and the rest of the form.
MAX_SETTINGS_FORM = 256 * 1024
EXPIRY_DAYS = ("", "7", "30", "90", "365")


def _require_user(current: Visit) -> None:
    if not current.signed_in:
        raise Unauthorized("credentials", "sign in first")


async def _settings_view(request: Request) -> tuple[Visit, RepositoryView]:
    services = services_of(request)
    current = await visit_of(request)
    _require_user(current)
    view = await services.repositories.get(current.principal, request.path_params["ns"], request.path_params["repo"])
    if not view.permissions.admin:
        raise Denied("repository", "only the repository's administrators change its settings")
    return current, view


def _render_settings(
    request: Request, current: Visit, view: RepositoryView, *, error: str = "", saved: bool = False, status: int = 200
) -> Response:
    return page(
        request,
        current,
        "repo_settings.html",
        status=status,
        title=f"Settings · {view.full_name}",
        repo=view,
        home=home_of(view.namespace, view.name),
        pull=pull_ref(request, view),
        tab="settings",
        error=error,
        saved=saved,
    )


async def repo_settings(request: Request) -> Response:
    current, view = await _settings_view(request)
    return _render_settings(request, current, view, saved=request.query_params.get("saved") == "1")


async def save_repo_settings(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current, limit=MAX_SETTINGS_FORM)
    _require_user(current)
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    visibility = fields.get("visibility")
    description, readme = fields.get("description"), fields.get("full_description")
    try:  # what the form left out stays as it is
        await services.repositories.update(
            current.principal,
            namespace,
            name,
            description=None if description is None else description.replace("\r\n", "\n").strip(),
            full_description=None if readme is None else readme.replace("\r\n", "\n"),
            is_private=None if visibility not in ("public", "private") else visibility == "private",
            source_ip=client_ip(request),
        )
    except Invalid as exc:
        view = await services.repositories.get(current.principal, namespace, name)
        return _render_settings(request, current, view, error=str(exc), status=400)
    target = f"/r/{namespace}/{name}/settings?saved=1"
    return finish(RedirectResponse(target, status_code=303), request, current)


async def _render_tokens(
    request: Request, current: Visit, *, created: tuple[str, str] | None = None, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    tokens = await services.access_tokens.list(current.principal, PageRequest(page_number(request), TOKENS_PER_PAGE))
    return page(
        request,
        current,
        "tokens.html",
        status=status,
        title="Personal access tokens",
        tokens=tokens,
        pages=pager(request, tokens),
        scopes=TOKEN_SCOPES,
        expiry_days=EXPIRY_DAYS,
        max_label=MAX_LABEL_LENGTH,
        created=created,
        error=error,
        now=datetime.now(UTC),
    )


async def tokens_page(request: Request) -> Response:
    current = await visit_of(request)
    _require_user(current)
    return await _render_tokens(request, current)


async def create_token(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    _require_user(current)
    days = fields.get("expires_in_days", "")
    expires_at = datetime.now(UTC) + timedelta(days=int(days)) if days in EXPIRY_DAYS and days else None
    try:
        info, secret = await services.access_tokens.create(
            current.principal,
            label=fields.get("label", ""),
            scopes=[fields.get("scope", "")],
            expires_at=expires_at,
            source_ip=client_ip(request),
        )
    except Invalid as exc:
        return await _render_tokens(request, current, error=str(exc), status=400)
    # Shown on this one response (no-store, like every page); only its hash is kept.
    return await _render_tokens(request, current, created=(info.token_label, secret))


async def revoke_token(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    _require_user(current)
    await services.access_tokens.update(
        current.principal, request.path_params["uuid"], is_active=False, source_ip=client_ip(request)
    )
    return finish(RedirectResponse("/settings/tokens", status_code=303), request, current)


async def delete_token(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    await form(request, current)
    _require_user(current)
    await services.access_tokens.delete(current.principal, request.path_params["uuid"], source_ip=client_ip(request))
    return finish(RedirectResponse("/settings/tokens", status_code=303), request, current)
