"""The site-admin area's other pages, for site administrators (404 to other users, as ``admin.py`` says):
``/admin/storage`` (all blobs' bytes and count, the namespaces using the most; quotas are set on each namespace's
lifecycle page), ``/admin/jobs`` (the queue by kind and state, the oldest queued job, recent failures with their
last error; a dead job retried) and ``/admin/gc`` (the latest collections and what they freed; a dry run or a real
collection started as a job). Everything goes through ``SiteAdminService``, which audits what it changes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.admin import ADMIN_PAGES, require_site_admin
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt
from dockyard.http.web.render import page
from dockyard.http.web.security import finish, form


async def storage_page(request: Request) -> Response:
    current = await visit_of(request)
    require_site_admin(current)
    summary = await services_of(request).site_admin.storage(current.principal)
    return page(
        request,
        current,
        "admin_storage.html",
        title="Storage · Site administration",
        admin_pages=ADMIN_PAGES,
        admin_tab="storage",
        storage=summary,
    )


async def _jobs(request: Request, *, error: str = "", status: int = 200) -> Response:
    current = await visit_of(request)
    overview = await services_of(request).site_admin.jobs(current.principal)
    return page(
        request,
        current,
        "admin_jobs.html",
        status=status,
        title="Jobs · Site administration",
        admin_pages=ADMIN_PAGES,
        admin_tab="jobs",
        jobs=overview,
        error=error,
        retried=request.query_params.get("retried", "")[:20],
    )


async def jobs_page(request: Request) -> Response:
    require_site_admin(await visit_of(request))
    return await _jobs(request)


async def retry_job(request: Request) -> Response:
    current = await visit_of(request)
    await form(request, current)
    require_site_admin(current)
    raw = request.path_params["job"]
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound("request", "no such job")
    failed = await attempt(
        lambda: services_of(request).site_admin.retry_job(current.principal, int(raw), source_ip=client_ip(request))
    )
    if failed is not None:
        return await _jobs(request, error=failed[0], status=failed[1])
    return finish(RedirectResponse(f"/admin/jobs?retried={raw}", status_code=303), request, current)


async def _gc(request: Request, *, status: int = 200, started: str = "") -> Response:
    current = await visit_of(request)
    state = await services_of(request).site_admin.gc(current.principal)
    return page(
        request,
        current,
        "admin_gc.html",
        status=status,
        title="Garbage collection · Site administration",
        admin_pages=ADMIN_PAGES,
        admin_tab="gc",
        gc=state,
        started=started or request.query_params.get("started", "")[:20],
        interval=services_of(request).settings.gc_interval_seconds,
        grace=services_of(request).settings.gc_grace_seconds,
    )


async def gc_page(request: Request) -> Response:
    require_site_admin(await visit_of(request))
    return await _gc(request)


async def start_gc(request: Request) -> Response:
    current = await visit_of(request)
    fields = await form(request, current)
    require_site_admin(current)
    action = fields.get("action", "")
    if action not in ("dry_run", "collect"):
        return await _gc(request, status=400)
    job = await services_of(request).site_admin.start_gc(
        current.principal, dry_run=action == "dry_run", source_ip=client_ip(request)
    )
    started = "queued" if job is not None else "already"
    return finish(RedirectResponse(f"/admin/gc?started={started}", status_code=303), request, current)
