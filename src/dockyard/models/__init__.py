"""All tables, one module per aggregate, sharing one MetaData so relationships never cycle between domains."""

from dockyard.models.accounts import (
    AccessToken,
    Account,
    AuditEntry,
    LoginFailure,
    OrgMember,
    RefreshToken,
    RepositoryPermission,
    ReservedName,
    SigningKey,
    Star,
    Team,
    TeamMember,
    WebSession,
)
from dockyard.models.base import Base, metadata
from dockyard.models.builds import Build, BuildBase, BuildLink, BuildLogLine, BuildRule
from dockyard.models.content import Blob, Manifest, ManifestReference, Repository, RepositoryBlob, Tag
from dockyard.models.events import Event
from dockyard.models.hub import OrgAccessToken, OrgInvite
from dockyard.models.inventory import ImageInventory, ImagePackage, LayerInventory, LayerPackage
from dockyard.models.jobs import Job
from dockyard.models.layers import LayerFile, LayerIndex
from dockyard.models.lifecycle import (
    ImmutabilityRule,
    NamespaceBlob,
    NamespaceUsage,
    PullRateCount,
    RetentionPolicy,
    RetentionRun,
)
from dockyard.models.maintenance import GCRun, MaintenanceLease
from dockyard.models.oidc import OidcIdentity, OidcLogin, OidcTeamGrant
from dockyard.models.proxy import Proxy, ProxyFetch, ProxyTagCheck
from dockyard.models.replication import ReplicationResult, ReplicationRule, ReplicationRun
from dockyard.models.scim import ScimToken, ScimUser
from dockyard.models.signing import NamespaceSigningKey, SignatureCheck, TrustedIdentity, TrustedKey, TrustPolicy
from dockyard.models.two_factor import RecoveryCode, TwoFactor, TwoFactorChallenge
from dockyard.models.uploads import Upload
from dockyard.models.vulns import (
    VulnAdvisory,
    VulnAffected,
    VulnAllowlistEntry,
    VulnFinding,
    VulnImagePackage,
    VulnPolicy,
    VulnScan,
    VulnSource,
    VulnVex,
)
from dockyard.models.webhooks import Webhook, WebhookAttempt, WebhookDelivery

__all__ = [
    "AccessToken",
    "Account",
    "AuditEntry",
    "Base",
    "Blob",
    "Build",
    "BuildBase",
    "BuildLink",
    "BuildLogLine",
    "BuildRule",
    "Event",
    "GCRun",
    "ImageInventory",
    "ImagePackage",
    "ImmutabilityRule",
    "Job",
    "LayerFile",
    "LayerIndex",
    "LayerInventory",
    "LayerPackage",
    "LoginFailure",
    "MaintenanceLease",
    "Manifest",
    "ManifestReference",
    "NamespaceBlob",
    "NamespaceSigningKey",
    "NamespaceUsage",
    "OidcIdentity",
    "OidcLogin",
    "OidcTeamGrant",
    "OrgAccessToken",
    "OrgInvite",
    "OrgMember",
    "Proxy",
    "ProxyFetch",
    "ProxyTagCheck",
    "PullRateCount",
    "RecoveryCode",
    "RefreshToken",
    "ReplicationResult",
    "ReplicationRule",
    "ReplicationRun",
    "Repository",
    "RepositoryBlob",
    "RepositoryPermission",
    "ReservedName",
    "RetentionPolicy",
    "RetentionRun",
    "ScimToken",
    "ScimUser",
    "SignatureCheck",
    "SigningKey",
    "Star",
    "Tag",
    "Team",
    "TeamMember",
    "TrustPolicy",
    "TrustedIdentity",
    "TrustedKey",
    "TwoFactor",
    "TwoFactorChallenge",
    "Upload",
    "VulnAdvisory",
    "VulnAffected",
    "VulnAllowlistEntry",
    "VulnFinding",
    "VulnImagePackage",
    "VulnPolicy",
    "VulnScan",
    "VulnSource",
    "VulnVex",
    "WebSession",
    "Webhook",
    "WebhookAttempt",
    "WebhookDelivery",
    "metadata",
]
