"""What a single sign-on attempt ends with — a verified ``OidcSignIn``, or ``OidcRefused`` / ``OidcUnavailable`` —
apart from the relying party (``auth.oidc``), so that the accounts side and the web pages can name them without
loading the JOSE and OAuth libraries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class OidcUnavailable(Exception):
    """The provider could not be reached, or its answer was unusable (discovery, keys, token endpoint)."""


class OidcRefused(Exception):
    """This sign-in is not valid: the message says why, in words a user may read. ``account`` names the Dockyard
    account it was refused for, when there is one (its audit log records the refusal)."""

    def __init__(self, message: str, account: str | None = None) -> None:
        super().__init__(message)
        self.account = account


@dataclass(frozen=True, slots=True)
class OidcSignIn:
    """A verified sign-in: the provider's issuer and subject, the claims (ID token, completed by UserInfo), and
    the same-site path the user set out from."""

    issuer: str
    subject: str
    claims: dict[str, Any]
    next_path: str
