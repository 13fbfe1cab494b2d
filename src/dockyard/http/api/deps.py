"""Dependencies of the Hub API routes: the services bundle, the caller (``Principal``) and page parameters.

Callers authenticate with ``Authorization: Bearer <token>`` where the token is an API token from
``POST /api/v2/auth/token`` (or the legacy ``/users/login``) or a personal access token, or with Basic auth
(password, personal access token, robot secret, or an organization's name and access token). Every request
re-checks that the account and token behind it are still live, so disabling or revoking takes effect on the next
request; an API token got with a password also dies with that password (``Authenticator.principal_for_token``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Query, Request

from dockyard.accounts.access_tokens import AccessTokenService
from dockyard.accounts.collaborators import CollaboratorService
from dockyard.accounts.invites import InviteService
from dockyard.accounts.org_tokens import OrgTokenService
from dockyard.accounts.orgs import OrgService
from dockyard.accounts.robots import RobotService
from dockyard.accounts.scim_tokens import ScimOrg, ScimTokenService
from dockyard.accounts.scim_users import ScimUserService
from dockyard.accounts.teams import TeamService
from dockyard.accounts.two_factor import TwoFactorService
from dockyard.accounts.users import UserService
from dockyard.auth.credentials import Authenticator
from dockyard.auth.secrets import PAT_PREFIX
from dockyard.auth.tokens import API_AUDIENCE, TokenService
from dockyard.authz.principal import ANONYMOUS, OPEN, Principal
from dockyard.builds.manage import BuildSettingsService
from dockyard.builds.service import BuildService
from dockyard.core.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest
from dockyard.errors import Unauthorized
from dockyard.http.credentials import client_ip, parse_authorization
from dockyard.inventory.service import InventoryService
from dockyard.layers.service import ImageFiles
from dockyard.proxy.manage import ProxyService
from dockyard.registry.blobs import BlobService
from dockyard.registry.services import Registry
from dockyard.replication.rules import ReplicationService
from dockyard.repos.audit import AuditLogService
from dockyard.repos.immutability import ImmutabilityService
from dockyard.repos.pulls import PullRecorder
from dockyard.repos.quotas import QuotaService
from dockyard.repos.repositories import RepositoryService
from dockyard.repos.retention import RetentionService
from dockyard.repos.tags import TagService
from dockyard.settings import Settings
from dockyard.trust.checker import TrustChecker
from dockyard.trust.manage import TrustService
from dockyard.vulns.gate import VulnerabilityGate
from dockyard.vulns.manage import VulnSettingsService
from dockyard.vulns.reports import VulnerabilityReports
from dockyard.webhooks.manage import WebhookService


@dataclass(frozen=True, slots=True)
class ApiServices:
    """Everything the API routes call, built once by the composition root."""

    settings: Settings
    registry: Registry
    authenticator: Authenticator
    tokens: TokenService
    users: UserService
    orgs: OrgService
    teams: TeamService
    collaborators: CollaboratorService
    robots: RobotService
    org_tokens: OrgTokenService
    scim_tokens: ScimTokenService  # SCIM provisioning: each organization's token, and its users
    scim_users: ScimUserService
    invites: InviteService
    access_tokens: AccessTokenService
    webhooks: WebhookService
    trust: TrustService
    checker: TrustChecker
    repositories: RepositoryService
    tags: TagService
    audit: AuditLogService
    pulls: PullRecorder
    files: ImageFiles
    vulns: VulnSettingsService
    gate: VulnerabilityGate
    reports: VulnerabilityReports
    inventory: InventoryService
    quotas: QuotaService
    retention: RetentionService
    immutability: ImmutabilityService
    proxies: ProxyService
    builds: BuildService
    build_settings: BuildSettingsService
    blobs: BlobService  # build logs archived in storage
    two_factor: TwoFactorService
    replication: ReplicationService


SERVICES = "dockyard.api"
"""The key of the request state under which ``app.served_api`` puts the server's ``ApiServices``."""


def services(request: Request) -> ApiServices:
    value: ApiServices = request.scope["state"][SERVICES]
    return value


async def caller(request: Request) -> Principal:
    """The caller (also left in the request's state, where the access log finds the actor)."""
    principal = await _authenticate(request)
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


async def _authenticate(request: Request) -> Principal:
    svc = services(request)
    if svc.settings.open:
        return OPEN
    credentials = parse_authorization(request.headers.get("authorization", ""))
    if credentials.scheme == "none":
        return ANONYMOUS
    if credentials.scheme == "bearer":
        if credentials.raw.startswith(PAT_PREFIX):
            return await svc.authenticator.login("", credentials.raw, client_ip(request))
        token = await svc.tokens.verify(credentials.raw, audience=API_AUDIENCE, use="api")
        live = await svc.authenticator.principal_for_token(token)
        if live is None:
            raise Unauthorized("token", "the account or token behind this token is no longer valid")
        return live
    if credentials.scheme == "basic":
        if credentials.username is None:
            raise Unauthorized("credentials", "malformed Basic credentials")
        return await svc.authenticator.login(credentials.username, credentials.password, client_ip(request))
    raise Unauthorized("credentials", "unsupported authorization scheme")


async def signed_in(who: Annotated[Principal, Depends(caller)]) -> Principal:
    """The caller, who must have authenticated."""
    if who.is_anonymous:
        raise Unauthorized("credentials", "authentication required")
    return who


async def scim_org(request: Request) -> ScimOrg:
    """The organization whose SCIM token is the request's bearer token (SCIM's ``Users`` take nothing else)."""
    credentials = parse_authorization(request.headers.get("authorization", ""))
    if credentials.scheme != "bearer":
        raise Unauthorized("token", "a SCIM bearer token of an organization is required")
    return await services(request).scim_tokens.authenticate(credentials.raw)


Caller = Annotated[Principal, Depends(caller)]
SignedIn = Annotated[Principal, Depends(signed_in)]
Services = Annotated[ApiServices, Depends(services)]
ScimCaller = Annotated[ScimOrg, Depends(scim_org)]


def page_request(
    page: Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="results per page")] = DEFAULT_PAGE_SIZE,
) -> PageRequest:
    return PageRequest(page, page_size)


Paging = Annotated[PageRequest, Depends(page_request)]


def paginated(request: Request, page: Page[Any], results: list[Any]) -> dict[str, Any]:
    """Docker Hub's list envelope: ``{count, next, previous, results}`` with absolute page links."""

    def link(number: int) -> str:
        params = dict(request.query_params)
        params["page"] = str(number)
        params["page_size"] = str(page.request.page_size)
        return f"{str(request.url).split('?', 1)[0]}?{urlencode(params)}"

    number = page.request.page
    return {
        "count": page.count,
        "next": link(number + 1) if page.has_next else None,
        "previous": link(number - 1) if number > 1 else None,
        "results": results,
    }
