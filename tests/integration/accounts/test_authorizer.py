"""``authz.authorizer.require``: the one hide-or-deny rule (docs/auth.md). A resource the caller may not see answers
exactly as a missing one (NotFound, same subject, message and detail); one it sees but may not act on is Denied."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.accounts.grants import grant
from dockyard.authz.authorizer import NamespaceResource, Permission, RepositoryResource, require
from dockyard.authz.permissions import Level
from dockyard.authz.principal import ANONYMOUS, OPEN, REPO_READ, Principal
from dockyard.db.engine import Database
from dockyard.errors import Denied, DomainError, NotFound
from tests.support.accounts import make_org, make_repo, make_user, with_token

Refusal = tuple[type[DomainError], str, str, Any]
Outcome = Level | Refusal


async def _outcome(
    db: Database, who: Principal, permission: Permission, resource: RepositoryResource | NamespaceResource
) -> Outcome:
    """The access level granted, or the error raised as (class, subject, message, detail)."""
    async with db.read() as conn:
        try:
            return (await require(conn, who, permission, resource)).level
        except DomainError as exc:
            return (type(exc), exc.subject, exc.message, exc.detail)


async def _refusal(
    db: Database, who: Principal, permission: Permission, resource: RepositoryResource | NamespaceResource
) -> Refusal:
    """The error raised as (class, subject, message, detail); access granted fails the test."""
    outcome = await _outcome(db, who, permission, resource)
    assert isinstance(outcome, tuple), outcome
    return outcome


async def test_a_repository_is_hidden_from_who_may_not_read_it_and_denied_to_who_may(db: Database) -> None:
    owner, reader, stranger = [await make_user(db, n) for n in ("owner", "reader", "stranger")]
    await make_org(db, "acme", owners=[owner], members=[reader])
    private = await make_repo(db, "acme/app", private=True)
    await make_repo(db, "acme/pub", private=False)
    async with db.write() as conn:
        await grant(conn, private, Level.READ, account_id=reader.account_id)

    missing = await _outcome(db, stranger, Permission.REPOSITORY_READ, RepositoryResource("acme/none"))
    assert missing == (NotFound, "repository", "repository not found", {"name": "acme/none"})
    for who in (stranger, ANONYMOUS):
        for permission in (Permission.REPOSITORY_READ, Permission.REPOSITORY_ADMIN):
            hidden = await _outcome(db, who, permission, RepositoryResource("acme/app"))
            assert hidden == (NotFound, "repository", "repository not found", {"name": "acme/app"})
    denied = await _refusal(db, reader, Permission.REPOSITORY_ADMIN, RepositoryResource("acme/app"))
    assert denied[0] is Denied
    assert await _outcome(db, reader, Permission.REPOSITORY_READ, RepositoryResource("acme/app")) == Level.READ
    assert await _outcome(db, owner, Permission.REPOSITORY_ADMIN, RepositoryResource("acme/app")) == Level.ADMIN
    # A public repository is seen by everyone: changing it is denied, not hidden.
    assert (await _refusal(db, ANONYMOUS, Permission.REPOSITORY_WRITE, RepositoryResource("acme/pub")))[0] is Denied
    # The hidden answer carries the caller's detail, like the missing one.
    detail = {"namespace": "acme", "name": "app"}
    hidden = await _outcome(db, stranger, Permission.REPOSITORY_READ, RepositoryResource("acme/app", detail))
    assert hidden == (NotFound, "repository", "repository not found", detail)


async def test_a_namespace_is_public_so_non_owners_are_denied(db: Database) -> None:
    owner, member, stranger = [await make_user(db, n) for n in ("owner", "member", "stranger")]
    await make_org(db, "acme", owners=[owner], members=[member])
    admin_ns = NamespaceResource("acme")

    unknown = await _outcome(db, owner, Permission.NAMESPACE_ADMIN, NamespaceResource("nobody"))
    assert unknown == (NotFound, "account", "namespace not found", {"name": "nobody"})
    for who in (member, stranger, ANONYMOUS, with_token(owner, REPO_READ)):
        refused = await _refusal(db, who, Permission.NAMESPACE_ADMIN, admin_ns)
        assert refused[0] is Denied, who
    for who in (stranger, ANONYMOUS):
        refused = await _refusal(db, who, Permission.NAMESPACE_MEMBER, NamespaceResource("acme", "organization"))
        assert refused[:2] == (Denied, "organization")
    assert await _outcome(db, member, Permission.NAMESPACE_MEMBER, admin_ns) == Level.READ
    assert await _outcome(db, owner, Permission.NAMESPACE_ADMIN, admin_ns) == Level.ADMIN
    assert await _outcome(db, owner, Permission.NAMESPACE_ADMIN, NamespaceResource("owner")) == Level.ADMIN
    # ``library`` exists before its first push makes it an organization: only administrators own it.
    assert await _outcome(db, OPEN, Permission.NAMESPACE_ADMIN, NamespaceResource("library")) == Level.ADMIN
    assert (await _refusal(db, owner, Permission.NAMESPACE_ADMIN, NamespaceResource("library")))[0] is Denied


async def test_a_namespace_permission_on_a_repository_is_a_programming_error(db: Database) -> None:
    async with db.read() as conn:
        with pytest.raises(ValueError, match="not a namespace permission"):
            await require(conn, OPEN, Permission.REPOSITORY_READ, NamespaceResource("acme"))
