"""Image-signing trust in the web hub: ``/namespaces/<ns>/trust`` (the namespace's default trust policy, its trusted
public keys — added as PEM with a name, listed with their key ID, removed —, its trusted keyless identities — OIDC
issuer and subject pattern —, and its Dockyard-managed signing key) and ``/r/<ns>/<repo>/trust`` (a repository's
own policy, overriding the namespace's default, with the keys it is verified against).

Everything goes through ``TrustService``, the service of the Hub API's trust routes, which requires the
namespace's owners (the authorizer: an unknown namespace is a 404, someone else's a 403 — namespaces are public).
The repository page asks ``RepositoryService.get`` first, so a repository the visitor may not see is a 404 as on
its other pages. After each change the process's trust checker forgets the namespace, as the API does, so the
next pull is judged by the new policy and keys.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from dockyard.errors import Invalid, NotFound
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of, visit_of
from dockyard.http.web.forms import attempt, field, require_signed_in
from dockyard.http.web.render import page
from dockyard.http.web.repository import home_of, pull_ref
from dockyard.http.web.security import Visit, finish, form
from dockyard.repos.access import full_name
from dockyard.repos.snapshots import RepositoryView
from dockyard.trust.checker import MODES
from dockyard.trust.manage import PolicyView

MODE_LABELS = {
    "off": "off — signatures are not checked at pull time",
    "warn": "warn — unsigned or unverified images are served with a warning",
    "enforce": "enforce — only images signed by a trusted key or identity are served",
}
assert set(MODE_LABELS) == set(MODES)
NAMESPACE_ACTIONS = frozenset(
    {"set_policy", "add_key", "remove_key", "add_identity", "remove_identity", "create_managed_key"}
)


def exempt_of(fields: dict[str, str]) -> list[str]:
    """The exemption globs, one per line (``repo`` or ``repo:tag``)."""
    return [line.strip() for line in fields.get("exempt", "").splitlines() if line.strip()]


def _mode(fields: dict[str, str]) -> str:
    mode = fields.get("mode", "")
    if mode not in MODES:
        raise Invalid("policy", f"the mode must be one of {', '.join(MODES)}")
    return mode


# -- the namespace's page ------------------------------------------------------------------------------------------


async def _render_namespace(
    request: Request, current: Visit, policy: PolicyView, *, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    actor, namespace = current.principal, policy.namespace
    try:
        managed = await services.trust.managed_key(actor, namespace)
    except NotFound:
        managed = None
    return page(
        request,
        current,
        "trust_namespace.html",
        status=status,
        title=f"Trust · {namespace}",
        namespace=namespace,
        action=f"/namespaces/{quote(namespace)}/trust",
        policy=policy,
        modes=MODE_LABELS,
        keys=await services.trust.list_keys(actor, namespace),
        identities=await services.trust.list_identities(actor, namespace),
        managed=managed,
        error=error,
        saved=request.query_params.get("saved", ""),
    )


async def _namespace_policy(request: Request, current: Visit) -> PolicyView:
    """The namespace's default policy, read as its owner (the page's access check)."""
    require_signed_in(current)
    return await services_of(request).trust.get_policy(current.principal, request.path_params["ns"], None)


async def namespace_trust(request: Request) -> Response:
    current = await visit_of(request)
    return await _render_namespace(request, current, await _namespace_policy(request, current))


def _namespace_change(
    request: Request, current: Visit, namespace: str, fields: dict[str, str]
) -> Callable[[], Awaitable[object]]:
    trust = services_of(request).trust
    actor, ip = current.principal, client_ip(request)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "set_policy": lambda: trust.set_policy(
            actor, namespace, None, mode=_mode(fields), exempt=exempt_of(fields), source_ip=ip
        ),
        "add_key": lambda: trust.add_key(
            actor, namespace, name=field(fields, "name"), public_key=field(fields, "public_key"), source_ip=ip
        ),
        "remove_key": lambda: trust.remove_key(actor, namespace, field(fields, "key_id"), source_ip=ip),
        "add_identity": lambda: trust.add_identity(
            actor,
            namespace,
            issuer=field(fields, "issuer"),
            subject=field(fields, "subject"),
            name=fields.get("name", ""),
            source_ip=ip,
        ),
        "remove_identity": lambda: trust.remove_identity(actor, namespace, field(fields, "identity_id"), source_ip=ip),
        "create_managed_key": lambda: trust.create_managed_key(actor, namespace, source_ip=ip),
    }
    return calls[fields.get("action", "")] if fields.get("action", "") in NAMESPACE_ACTIONS else _unknown


async def _unknown() -> None:
    raise Invalid("request", "unknown action")


async def save_namespace_trust(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    policy = await _namespace_policy(request, current)
    namespace = policy.namespace
    failed = await attempt(_namespace_change(request, current, namespace, fields))
    services.checker.forget(namespace)
    if failed is not None:
        message, status = failed
        return await _render_namespace(request, current, policy, error=message, status=status)
    target = f"/namespaces/{quote(namespace)}/trust?saved={quote(fields.get('action', ''))}"
    return finish(RedirectResponse(target, status_code=303), request, current)


# -- a repository's page -------------------------------------------------------------------------------------------


async def _repository_policy(request: Request, current: Visit) -> tuple[RepositoryView, PolicyView]:
    """The repository (404 to who may not see it) and its policy (403 to who is not the namespace's owner)."""
    require_signed_in(current)
    services = services_of(request)
    namespace, name = request.path_params["ns"], request.path_params["repo"]
    view = await services.repositories.get(current.principal, namespace, name)
    policy = await services.trust.get_policy(current.principal, view.namespace, full_name(view.namespace, view.name))
    return view, policy


async def _render_repository(
    request: Request, current: Visit, view: RepositoryView, policy: PolicyView, *, error: str = "", status: int = 200
) -> Response:
    services = services_of(request)
    actor, namespace = current.principal, view.namespace
    return page(
        request,
        current,
        "trust_repo.html",
        status=status,
        title=f"Trust · {view.full_name}",
        repo=view,
        home=home_of(namespace, view.name),
        pull=pull_ref(request, view),
        tab="trust",
        action=f"/r/{quote(namespace)}/{quote(view.name)}/trust",
        policy=policy,
        modes=MODE_LABELS,
        keys=await services.trust.list_keys(actor, namespace),
        identities=await services.trust.list_identities(actor, namespace),
        error=error,
        saved=request.query_params.get("saved") == "1",
    )


async def repo_trust(request: Request) -> Response:
    current = await visit_of(request)
    view, policy = await _repository_policy(request, current)
    return await _render_repository(request, current, view, policy)


async def save_repo_trust(request: Request) -> Response:
    services = services_of(request)
    current = await visit_of(request)
    fields = await form(request, current)
    view, policy = await _repository_policy(request, current)

    async def store() -> None:
        if fields.get("action", "") != "set_policy":
            raise Invalid("request", "unknown action")
        await services.trust.set_policy(
            current.principal,
            view.namespace,
            full_name(view.namespace, view.name),
            mode=_mode(fields),
            exempt=exempt_of(fields),
            source_ip=client_ip(request),
        )

    failed = await attempt(store)
    services.checker.forget(view.namespace)
    if failed is not None:
        message, status = failed
        return await _render_repository(request, current, view, policy, error=message, status=status)
    target = f"/r/{quote(view.namespace)}/{quote(view.name)}/trust?saved=1"
    return finish(RedirectResponse(target, status_code=303), request, current)
