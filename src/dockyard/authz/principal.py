"""The authenticated caller of a request: anonymous, a user, a robot, or anyone at all on an open server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PrincipalKind = Literal["anonymous", "user", "robot", "open"]

# Scopes of personal access tokens (Docker Hub's names).
REPO_READ = "repo:read"
REPO_WRITE = "repo:write"
REPO_ADMIN = "repo:admin"
REPO_PUBLIC_READ = "repo:public_read"
TOKEN_SCOPES = (REPO_ADMIN, REPO_WRITE, REPO_READ, REPO_PUBLIC_READ)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``token_id``/``token_scopes``/``token_repositories`` are set when the caller
    authenticated with a personal access token, which caps what the account may do. ``credential_generation``
    is the account's at authentication (refresh and API tokens issued for the principal carry it)."""

    kind: PrincipalKind
    account_id: int | None = None
    name: str = ""
    is_admin: bool = False
    token_id: str | None = None
    token_scopes: frozenset[str] | None = None
    token_repositories: frozenset[str] | None = None
    credential_generation: int | None = None

    @property
    def is_anonymous(self) -> bool:
        return self.kind == "anonymous"

    @property
    def is_authenticated(self) -> bool:
        return self.kind in ("user", "robot")

    @property
    def superuser(self) -> bool:
        """Open servers and site administrators (unless a token narrows what they may do) may do anything."""
        return self.kind == "open" or (self.is_admin and self.token_scopes is None)

    @property
    def audit_name(self) -> str:
        return self.name if self.is_authenticated else ("" if self.kind == "anonymous" else "open")


ANONYMOUS = Principal("anonymous")
OPEN = Principal("open", name="open")
