"""The one authorizer: ``require(conn, principal, permission, resource)`` decides whether a principal may act on a
repository or a namespace, and raises ``NotFound`` or ``Denied`` when it may not. Services call it before they act
(routes call services); nothing else compares levels or roles to decide.

Hide or deny — the rule
-----------------------
A caller who may not **see** the resource gets exactly the answer a missing resource gets (``NotFound``, 404 on
the Hub API): its existence must not leak. A caller who may see it but may not do **this** gets ``Denied`` (403).

Who sees what:

- a repository: whoever holds at least read on it (``repository_levels``; public repositories: everyone). So a
  private repository is 404 to a stranger and 403 to a reader who asks to administer it.
- a namespace (a user or an organization; ``library`` before its first push): everyone. Profiles are public,
  so an owner-only action on a namespace (its webhooks, trust keys, identities and policies, managed signing key,
  audit log, robots, teams, members, new repositories) refused to a non-owner is 403, and an unknown namespace is
  404 for everyone.
- an object addressed by its own id inside a namespace or a repository (a webhook and its deliveries, a personal
  access token): only who may manage it. Its service turns a refusal into its own ``NotFound``, so a stranger
  cannot tell a webhook it may not touch from none at all.

Order: what does not depend on the resource comes first — no or dead credentials (401), a kind of credential
that may never do this (a robot or an access token managing tokens or a password: 403) — so it reveals nothing;
then visibility (404); then the permission (403); only then is anything inside the resource looked up (a key, a
tag, a team: 404 if missing), so a 403 never depends on whether something hidden exists.

On ``/v2`` the registry decides on the repository name alone, before it looks anything up (distribution's token
spec), so a private repository and a missing one answer alike there too (401 challenge, or 403 ``DENIED``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.permissions import Facts, Level, levels_of, load_facts, namespace_role, repository_rows
from dockyard.authz.principal import Principal
from dockyard.core.names import LIBRARY, namespace_of
from dockyard.errors import Denied, NotFound
from dockyard.models import Account
from dockyard.models.accounts import ORG, USER


class Permission(StrEnum):
    """What an action needs, as ``resource:action``."""

    REPOSITORY_READ = "repository:read"
    REPOSITORY_WRITE = "repository:write"
    REPOSITORY_ADMIN = "repository:admin"  # settings, grants, webhooks, deleting
    NAMESPACE_MEMBER = "namespace:member"  # see an organization's members and teams
    NAMESPACE_ADMIN = "namespace:admin"  # the namespace's owners: everything the namespace holds

    @classmethod
    def on_repository(cls, level: Level) -> Permission:
        return {Level.READ: cls.REPOSITORY_READ, Level.WRITE: cls.REPOSITORY_WRITE, Level.ADMIN: cls.REPOSITORY_ADMIN}[
            level
        ]


_REPOSITORY_NEEDS = {
    Permission.REPOSITORY_READ: Level.READ,
    Permission.REPOSITORY_WRITE: Level.WRITE,
    Permission.REPOSITORY_ADMIN: Level.ADMIN,
}


@dataclass(frozen=True, slots=True)
class RepositoryResource:
    """A repository by its registry name. ``detail`` is what the errors name (default ``{"name": name}``): the
    answer for a hidden repository must be the one for a missing repository, detail included."""

    name: str
    detail: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class NamespaceResource:
    """A namespace by name. ``subject`` is what the errors are about (``organization`` on the organization routes)."""

    name: str
    subject: Literal["account", "organization"] = "account"


Resource = RepositoryResource | NamespaceResource


@dataclass(frozen=True, slots=True)
class RepositoryFacts:
    id: int
    name: str
    namespace: str
    is_private: bool


@dataclass(frozen=True, slots=True)
class Access:
    """What ``require`` found: the principal's level on the resource (namespace owners: admin, members: read) and,
    for a repository, its row."""

    level: Level
    repository: RepositoryFacts | None = None


async def require(
    conn: AsyncConnection,
    principal: Principal,
    permission: Permission,
    resource: Resource,
    *,
    facts: Facts | None = None,
    doing: str = "do this",
) -> Access:
    """``Access`` if ``principal`` holds ``permission`` on ``resource``; else ``NotFound`` (it may not see the
    resource, or there is none) or ``Denied`` (it sees the resource). ``doing`` completes the refusal's message
    ("only the namespace's owners may …")."""
    if isinstance(resource, RepositoryResource):
        return await _repository(conn, principal, _REPOSITORY_NEEDS[permission], resource, facts)
    return await _namespace(conn, principal, permission, resource, doing)


async def _repository(
    conn: AsyncConnection, principal: Principal, need: Level, resource: RepositoryResource, facts: Facts | None
) -> Access:
    detail = dict(resource.detail) if resource.detail is not None else {"name": resource.name[:300]}
    rows = await repository_rows(conn, [resource.name])
    row = rows.get(resource.name)
    if facts is None:
        facts = await load_facts(conn, principal)
    level = (await levels_of(conn, principal, [resource.name], rows, facts))[resource.name]
    namespace = row.namespace if row is not None else namespace_of(resource.name)
    if level < need and namespace in facts.blocked_orgs:
        raise Denied(
            "repository",
            f"the organization {namespace} requires two-factor authentication: turn it on for your account to "
            "reach its repositories",
            {**detail, "organization": namespace, "required": "two_factor"},
        )
    if row is None or level < Level.READ:
        raise NotFound("repository", "repository not found", detail)
    if level < need:
        raise Denied(
            "repository",
            f"{need.label} access to the repository is required",
            {**detail, "required": need.label, "held": level.label},
        )
    return Access(level, RepositoryFacts(row.id, row.name, row.namespace, bool(row.is_private)))


async def namespace_exists(conn: AsyncConnection, name: str) -> bool:
    """A user or an organization has the name, or it is ``library`` (which exists before its first push makes it
    an organization)."""
    if name == LIBRARY:
        return True
    found = await conn.execute(select(Account.id).where(Account.name == name, Account.kind.in_((USER, ORG))))
    return found.first() is not None


async def _namespace(
    conn: AsyncConnection, principal: Principal, permission: Permission, resource: NamespaceResource, doing: str
) -> Access:
    if permission not in (Permission.NAMESPACE_ADMIN, Permission.NAMESPACE_MEMBER):
        raise ValueError(f"{permission} is not a namespace permission")
    subject = resource.subject
    if not await namespace_exists(conn, resource.name):
        if subject == "organization":
            raise NotFound("organization", "organization not found", {"name": resource.name[:300]})
        raise NotFound("account", "namespace not found", {"name": resource.name[:300]})
    role = await namespace_role(conn, principal, resource.name)
    organization = subject == "organization"
    whose = "the organization" if organization else "the namespace"
    detail = {"org" if organization else "name": resource.name}
    if permission == Permission.NAMESPACE_ADMIN and role != "owner":
        raise Denied(subject, f"only owners of {whose} may {doing}", detail)
    if role is None:
        raise Denied(subject, f"only members of {whose} may {doing}", detail)
    return Access(Level.ADMIN if role == "owner" else Level.READ)
