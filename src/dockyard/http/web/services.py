"""``WebServices``: everything the web pages call, built once by the composition root (the same service objects
the Hub API uses)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dockyard.accounts.access_tokens import AccessTokenService
from dockyard.accounts.collaborators import CollaboratorService
from dockyard.accounts.invites import InviteService
from dockyard.accounts.oidc_users import OidcAccounts
from dockyard.accounts.orgs import OrgService
from dockyard.accounts.robots import RobotService
from dockyard.accounts.teams import TeamService
from dockyard.accounts.two_factor import TwoFactorService
from dockyard.accounts.users import UserService
from dockyard.auth.web_sessions import WebSessions
from dockyard.builds.manage import BuildSettingsService
from dockyard.builds.service import BuildService
from dockyard.inventory.service import InventoryService
from dockyard.layers.service import ImageFiles
from dockyard.proxy.manage import ProxyService
from dockyard.registry.services import Registry
from dockyard.replication.rules import ReplicationService
from dockyard.repos.audit import AuditLogService
from dockyard.repos.immutability import ImmutabilityService
from dockyard.repos.inspect import ImageInspector
from dockyard.repos.quotas import QuotaService
from dockyard.repos.ratelimits import PullRateLimiter
from dockyard.repos.repositories import RepositoryService
from dockyard.repos.retention import RetentionService
from dockyard.repos.site_admin import SiteAdminService
from dockyard.repos.tags import TagService
from dockyard.settings import Settings
from dockyard.trust.checker import TrustChecker
from dockyard.trust.manage import TrustService
from dockyard.vulns.reports import VulnerabilityReports
from dockyard.webhooks.manage import WebhookService

if TYPE_CHECKING:
    from dockyard.auth.oidc import OidcClient  # the JOSE and OAuth libraries: loaded only with single sign-on


@dataclass(frozen=True, slots=True)
class WebServices:
    settings: Settings
    registry: Registry
    sessions: WebSessions
    users: UserService
    orgs: OrgService
    teams: TeamService
    repositories: RepositoryService
    tags: TagService
    checker: TrustChecker
    files: ImageFiles
    access_tokens: AccessTokenService
    webhooks: WebhookService
    collaborators: CollaboratorService
    inventory: InventoryService
    reports: VulnerabilityReports
    builds: BuildService
    robots: RobotService
    audit: AuditLogService
    quotas: QuotaService
    retention: RetentionService
    immutability: ImmutabilityService
    ratelimits: PullRateLimiter | None  # None: pull rate limits are off
    two_factor: TwoFactorService
    invites: InviteService
    oidc_accounts: OidcAccounts  # CLI secrets keep working while single sign-on is switched off
    oidc: OidcClient | None  # None: single sign-on is not configured
    trust: TrustService
    proxies: ProxyService
    replication: ReplicationService
    build_settings: BuildSettingsService
    site_admin: SiteAdminService

    @property
    def inspector(self) -> ImageInspector:
        return ImageInspector(self.tags, self.registry.manifests, self.registry.blobs, self.registry.listing)
