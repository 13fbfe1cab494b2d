"""JSON Web Tokens: registry bearer tokens (Docker token auth), refresh tokens (``offline_token``) and Hub API
tokens, all ES256-signed by the key ring with a ``kid`` header.

Each kind has its own audience and ``use`` claim so that one cannot stand in for another. Verification pins the
algorithm (``alg=none`` and HMAC confusion are refused), requires ``exp``/``nbf``/``iat``/``aud``/``iss`` and
a known ``kid``. Verified registry tokens are cached until they expire: the /v2 hot path verifies a signature
once per token, not once per request.

Tokens carry the account's credential generation (``gen``) they were issued under. This module only signs and
reads it: whoever turns a refresh or API token back into a live principal checks it against the account
(``Authenticator.principal_for_token``); registry tokens are verified offline and simply run out.

PyJWT (and with it ``cryptography``) is imported when the first token is signed or verified, not when a server
process starts (``--open`` servers and processes that serve only anonymous pulls never load it).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard.auth.scopes import ResourceScope
from dockyard.auth.token_keys import ALGORITHM, KeyRing
from dockyard.authz.principal import Principal
from dockyard.errors import Unauthorized
from dockyard.settings import Settings

API_AUDIENCE = "dockyard-api"
_CACHE_LIMIT = 10_000
_LEEWAY = 30


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: datetime
    jti: str = ""


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    kind: str
    account_id: int | None
    token_id: str | None  # the personal access token it was issued for, if any
    access: tuple[ResourceScope, ...]
    expires_at: float
    claims: dict[str, Any]
    generation: int | None = None  # the account's credential generation at issue (None: not recorded)
    jti: str = ""

    def actions(self, resource_type: str, name: str) -> frozenset[str]:
        return frozenset(a for s in self.access if s.type == resource_type and s.name == name for a in s.actions)


def _refused(reason: str) -> Unauthorized:
    return Unauthorized("token", f"invalid token: {reason}")


class TokenService:
    def __init__(self, keys: KeyRing, settings: Settings) -> None:
        self.keys = keys
        self.settings = settings
        self._cache: dict[str, VerifiedToken] = {}

    async def _sign(self, claims: dict[str, Any], lifetime: int) -> IssuedToken:
        key = await self.keys.signing_key()
        now = int(time.time())
        jti = uuid.uuid4().hex
        body = {
            "iss": self.settings.token_issuer,
            "iat": now,
            "nbf": now - 1,
            "exp": now + lifetime,
            "jti": jti,
            **claims,
        }
        assert key.private is not None
        import jwt

        token = jwt.encode(body, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})
        return IssuedToken(token, lifetime, datetime.fromtimestamp(now, UTC), jti)

    @staticmethod
    def _identity(principal: Principal) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": principal.name if principal.is_authenticated else "", "knd": principal.kind}
        if principal.account_id is not None:
            claims["uid"] = principal.account_id
        if principal.token_id is not None:
            claims["pat"] = principal.token_id
        if principal.credential_generation is not None:
            claims["gen"] = principal.credential_generation
        return claims

    async def issue_registry(
        self, principal: Principal, service: str, access: list[ResourceScope], *, lifetime: int | None = None
    ) -> IssuedToken:
        """A registry bearer token granting ``access``; ``lifetime`` seconds (default ``token_lifetime_seconds``;
        automated builds ask for as long as a build may run)."""
        claims = {
            **self._identity(principal),
            "aud": service,
            "use": "registry",
            "access": [scope.claim() for scope in access],
        }
        return await self._sign(claims, lifetime or self.settings.token_lifetime_seconds)

    async def issue_refresh(self, principal: Principal, service: str, client_id: str) -> IssuedToken:
        """A signed refresh token. Callers store it (``RefreshTokens``): a refresh token without a row is refused."""
        claims = {**self._identity(principal), "aud": service, "use": "refresh", "client_id": client_id[:100]}
        return await self._sign(claims, self.settings.refresh_token_lifetime_seconds)

    async def issue_api(self, principal: Principal) -> IssuedToken:
        claims = {**self._identity(principal), "aud": API_AUDIENCE, "use": "api"}
        return await self._sign(claims, self.settings.api_token_lifetime_seconds)

    async def verify(self, token: str, *, audience: str, use: str) -> VerifiedToken:
        """Check signature, algorithm, key id, audience, issuer, times and purpose. Raises Unauthorized."""
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at > time.time() and cached.claims.get("use") == use and cached.claims["aud"] == audience:
                return cached
            self._cache.pop(token, None)
        if len(token) > 8192:
            raise _refused("too long")
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise _refused("malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise _refused("unsupported algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _refused("no key id")
        key = self.keys.cached_public_key(kid) or await self.keys.public_key(kid)
        if key is None:
            raise _refused("unknown key id")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=audience,
                issuer=self.settings.token_issuer,
                leeway=_LEEWAY,
                options={"require": ["exp", "iat", "nbf", "aud", "iss", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise _refused("expired") from exc
        except jwt.PyJWTError as exc:
            raise _refused(str(exc)[:100]) from exc
        if claims.get("use") != use:
            raise _refused("wrong kind of token")
        verified = VerifiedToken(
            subject=str(claims["sub"]),
            kind=str(claims.get("knd", "anonymous")),
            account_id=claims.get("uid") if isinstance(claims.get("uid"), int) else None,
            token_id=claims.get("pat") if isinstance(claims.get("pat"), str) else None,
            access=_access(claims.get("access")),
            expires_at=float(claims["exp"]),
            claims=claims,
            generation=_int_claim(claims.get("gen")),
            jti=claims["jti"] if isinstance(claims.get("jti"), str) else "",
        )
        if use == "registry":
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[token] = verified
        return verified


def _int_claim(raw: object) -> int | None:
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else None


def _access(raw: object) -> tuple[ResourceScope, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        kind, name, actions = entry.get("type"), entry.get("name"), entry.get("actions")
        if isinstance(kind, str) and isinstance(name, str) and isinstance(actions, list):
            out.append(ResourceScope(kind, name, tuple(a for a in actions if isinstance(a, str))))
    return tuple(out)
