"""What account services return: frozen snapshots of accounts, memberships, teams, grants, robots and tokens.

Never ORM rows, never secrets or hashes. Surfaces (``http.api``, ``cli``) shape them further.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from dockyard.authz.permissions import Level

OWNER = "owner"
EDITOR = "editor"  # pushes to every repository of the organization; does not manage it
MEMBER = "member"
ORG_ROLES = (OWNER, EDITOR, MEMBER)


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    email: str | None
    full_name: str
    company: str
    location: str
    profile_url: str
    is_admin: bool
    disabled: bool
    created_at: datetime
    password_changed_at: datetime | None

    @property
    def enabled(self) -> bool:
        return not self.disabled


@dataclass(frozen=True, slots=True)
class OrgInfo:
    id: int
    name: str
    full_name: str
    company: str
    location: str
    profile_url: str
    description: str
    default_private: bool | None  # None: the server's default
    disabled: bool
    created_at: datetime
    require_two_factor: bool = False  # members need two-factor sign-in to reach its repositories


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """A user's membership of an organization."""

    username: str
    full_name: str
    role: str  # owner | editor | member
    joined_at: datetime
    user_id: int = 0
    email: str | None = None  # only for the organization's owners and site administrators
    company: str = ""
    location: str = ""
    profile_url: str = ""
    groups: tuple[str, ...] = ()  # the organization's teams the user is in, by name


@dataclass(frozen=True, slots=True)
class UserOrgInfo:
    """An organization a user belongs to, with the user's role there."""

    org: OrgInfo
    role: str


@dataclass(frozen=True, slots=True)
class TeamInfo:
    id: int
    org: str
    name: str
    description: str
    member_count: int
    created_at: datetime
    uuid: str = ""


@dataclass(frozen=True, slots=True)
class TeamMemberInfo:
    username: str
    full_name: str
    user_id: int = 0
    email: str | None = None  # only for the organization's owners and site administrators
    company: str = ""
    location: str = ""
    profile_url: str = ""
    date_joined: datetime | None = None  # when the account was created


@dataclass(frozen=True, slots=True)
class RepositoryGrant:
    """A level on one repository (held by a team or a robot)."""

    repository: str
    level: Level


@dataclass(frozen=True, slots=True)
class TeamGrant:
    """A team's level on the repository being listed."""

    team: str
    level: Level


@dataclass(frozen=True, slots=True)
class CollaboratorInfo:
    repository: str
    username: str
    level: Level


@dataclass(frozen=True, slots=True)
class RobotInfo:
    id: int
    name: str  # org+shortname: what the robot logs in with
    org: str
    shortname: str
    description: str
    disabled: bool
    created_at: datetime
    permissions: tuple[RepositoryGrant, ...]  # sorted by repository
    expires_at: datetime | None = None  # None: never

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    @property
    def permission_map(self) -> dict[str, Level]:
        return {grant.repository: grant.level for grant in self.permissions}


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """A personal access token, in Docker Hub's shape (``GET /v2/access-tokens/{uuid}``) minus the secret."""

    uuid: str
    username: str
    client_id: str
    creator_ip: str
    created_at: datetime
    last_used: datetime | None
    generated_by: str
    is_active: bool  # False once revoked (an expired token stays "active" but no longer authenticates)
    token_label: str
    scopes: tuple[str, ...]
    expires_at: datetime | None
    repositories: tuple[str, ...] | None  # None: every repository the account may use
    token_prefix: str  # the first characters of the secret, to recognise it

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now
