"""Who may do what on ``/v2``: every route declares the actions it needs (``@requires("pull")``) and the guard
checks them against the caller's credentials before the handler runs.

Credentials, in the order clients use them: a bearer token from ``/v2/token`` (verified offline; its ``access``
claim is the grant), Basic auth straight on ``/v2`` (distribution/Harbor style; verified credentials are cached
for ``credential_cache_seconds``), or none (anonymous: pulls of public repositories only).

Failures, as Docker clients expect them: no or insufficient credentials → 401 ``UNAUTHORIZED`` with a
``WWW-Authenticate: Bearer realm=…,service=…,scope=…`` challenge (so the client fetches a token and retries);
an authenticated caller who lacks the permission → 403 ``DENIED``. A private repository and a missing one answer
alike, so nobody learns that a private repository exists.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from dockyard.auth.credentials import Authenticator
from dockyard.auth.refresh import RefreshTokens
from dockyard.auth.tokens import TokenService, VerifiedToken
from dockyard.authz.principal import ANONYMOUS, OPEN, Principal, PrincipalKind
from dockyard.core.names import namespace_of
from dockyard.errors import Unauthorized
from dockyard.http.credentials import Credentials, client_ip, parse_authorization
from dockyard.http.oci.base import API_VERSION, repo_name
from dockyard.http.oci.errors import OCIError
from dockyard.registry.access import RegistryAccess
from dockyard.settings import Settings

Handler = Callable[[Request], Awaitable[Response]]
_BASIC_CACHE_LIMIT = 10_000


def base_url(request: Request, settings: Settings) -> str:
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = request.headers.get("host") or f"{settings.host}:{settings.port}"
    return f"{request.url.scheme}://{host}"


def service_name(request: Request, settings: Settings) -> str:
    """The token audience: the configured service name, else the host the client addressed."""
    if settings.token_service:
        return settings.token_service
    return request.headers.get("host") or f"{settings.host}:{settings.port}"


class RegistryGuard:
    def __init__(
        self,
        settings: Settings,
        access: RegistryAccess,
        authenticator: Authenticator,
        tokens: TokenService,
        refresh: RefreshTokens,
    ) -> None:
        self.settings = settings
        self.access = access
        self.authenticator = authenticator
        self.tokens = tokens
        self.refresh = refresh
        self._basic: dict[str, tuple[float, Principal]] = {}

    # -- challenges -------------------------------------------------------------------------------------------

    def challenge(
        self, request: Request, scope: str | None, message: str = "authentication required", error: str | None = None
    ) -> OCIError:
        parts = [
            f'realm="{base_url(request, self.settings)}/v2/token"',
            f'service="{service_name(request, self.settings)}"',
        ]
        if scope:
            parts.append(f'scope="{scope}"')
        if error:
            parts.append(f'error="{error}"')
        detail: Any = None
        if scope:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            detail = [{"Type": kind, "Name": name, "Action": action} for action in actions.split(",")]
        headers = {"WWW-Authenticate": "Bearer " + ",".join(parts), **API_VERSION}
        return OCIError("UNAUTHORIZED", message, detail, headers=headers)

    @staticmethod
    def denied() -> OCIError:
        return OCIError("DENIED", "requested access to the resource is denied", headers=dict(API_VERSION))

    async def refusal(self, name: str, wanted: frozenset[str]) -> OCIError:
        """The 403 for an authenticated caller: a push that would create a repository in a namespace no account
        owns says so (accounts are public, so this reveals nothing); anything else is the generic ``denied``."""
        if "push" in wanted and (reason := await self.access.push_refusal(name)) is not None:
            return OCIError("DENIED", reason, {"namespace": namespace_of(name)}, headers=dict(API_VERSION))
        return self.denied()

    # -- credentials ------------------------------------------------------------------------------------------

    async def bearer(self, request: Request, token: str, scope: str | None) -> VerifiedToken:
        try:
            return await self.tokens.verify(token, audience=service_name(request, self.settings), use="registry")
        except Unauthorized as exc:
            raise self.challenge(request, scope, exc.message, "invalid_token") from exc

    async def basic(self, request: Request, credentials: Credentials, scope: str | None) -> Principal:
        """Verify ``Authorization: Basic`` credentials (cached briefly, so that per-request Basic auth does not
        pay argon2 on every request). Raises the challenge on failure."""
        key = hashlib.sha256(credentials.raw.encode()).hexdigest()
        cached = self._basic.get(key)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        if credentials.username is None:
            raise self.challenge(request, scope, "malformed Basic credentials")
        try:
            principal = await self.authenticator.login(credentials.username, credentials.password, client_ip(request))
        except Unauthorized as exc:
            raise self.challenge(request, scope, exc.message) from exc
        if self.settings.credential_cache_seconds:
            if len(self._basic) >= _BASIC_CACHE_LIMIT:
                self._basic.clear()
            self._basic[key] = (now + self.settings.credential_cache_seconds, principal)
        return principal

    async def granted(self, principal: Principal, name: str) -> frozenset[str]:
        return (await self.access.actions(principal, [name]))[name]

    async def may_also(self, request: Request, caller: Principal, name: str, action: str) -> bool:
        """Whether the credentials of this request (already authorized for its own repository) may also do
        ``action`` on repository ``name`` (a mount's source). A bearer token answers for itself: its grant, else
        the live account *with the token's restrictions* (an access token's scopes and repository list), never
        the bare account behind it."""
        if caller.superuser:
            return True
        token: VerifiedToken | None = request.scope.get("state", {}).get("token")
        if token is None:
            return action in await self.granted(caller, name)
        if action in token.actions("repository", name):
            return True
        if token.account_id is None:
            return False
        live = await self.authenticator.principal_for(token.account_id, token.token_id)
        return live is not None and action in await self.granted(live, name)

    # -- checks -----------------------------------------------------------------------------------------------

    async def authorize(self, request: Request, name: str, actions: tuple[str, ...]) -> Principal:
        """The caller if they may do ``actions`` on repository ``name``; else raise 401 or 403 as above."""
        if self.settings.open:
            if "push" in actions and await self.access.is_proxy(name):  # a cache: nobody pushes, open or not
                raise await self.refusal(name, frozenset(actions))
            return OPEN
        scope = f"repository:{name}:{','.join(actions)}"
        credentials = parse_authorization(request.headers.get("authorization", ""))
        wanted = frozenset(actions)
        if credentials.scheme == "bearer":
            token = await self.bearer(request, credentials.raw, scope)
            request.scope.setdefault("state", {})["token"] = token
            principal = token_principal(token)
            if wanted <= token.actions("repository", name):
                return principal
            if token.account_id is None:
                raise self.challenge(request, scope, error="insufficient_scope")
            live = await self.authenticator.principal_for(token.account_id, token.token_id)
            if live is not None and wanted <= await self.granted(live, name):
                raise self.challenge(request, scope, error="insufficient_scope")
            raise await self.refusal(name, wanted)
        if credentials.scheme == "basic":
            principal = await self.basic(request, credentials, scope)
        elif credentials.scheme == "none":
            principal = ANONYMOUS
        else:
            raise self.challenge(request, scope, "unsupported authorization scheme")
        if wanted <= await self.granted(principal, name):
            return principal
        if principal.is_anonymous:
            raise self.challenge(request, scope)
        raise await self.refusal(name, wanted)

    async def authenticate_any(self, request: Request, scope: str | None = None) -> Principal:
        """For ``/v2/`` and the catalog: any valid credentials (or anonymous, when ``scope`` allows it)."""
        if self.settings.open:
            return OPEN
        credentials = parse_authorization(request.headers.get("authorization", ""))
        if credentials.scheme == "bearer":
            token = await self.bearer(request, credentials.raw, scope)
            if scope is not None and scope.startswith("registry:") and "*" not in token.actions("registry", "catalog"):
                raise self.challenge(request, scope, error="insufficient_scope")
            if token.account_id is None:
                return ANONYMOUS
            live = await self.authenticator.principal_for(token.account_id, token.token_id)
            if live is None:
                raise self.challenge(request, scope, "the account or token behind this token is no longer valid")
            return live
        if credentials.scheme == "basic":
            return await self.basic(request, credentials, scope)
        if credentials.scheme == "none":
            return ANONYMOUS
        raise self.challenge(request, scope, "unsupported authorization scheme")


def token_principal(token: VerifiedToken) -> Principal:
    """Who a bearer token was issued to: the identity (for audit names), not its rights. What the token allows
    is its grant; ``RegistryGuard.may_also`` answers for anything beyond it."""
    if token.account_id is None:
        return ANONYMOUS
    kind: PrincipalKind = "robot" if token.kind == "robot" else "user"
    return Principal(kind, token.account_id, token.subject, token_id=token.token_id)


def guard(request: Request) -> RegistryGuard:
    value: RegistryGuard = request.app.state.guard
    return value


def principal(request: Request) -> Principal:
    """The caller, as the route's ``@requires`` check established it."""
    value: Principal = request.scope.get("state", {}).get("principal", ANONYMOUS)
    return value


def requires(*actions: str) -> Callable[[Handler], Handler]:
    """Declare the repository actions a ``/v2/<name>/…`` route needs; the check runs before the handler."""

    def wrap(handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            name = repo_name(request)
            caller = await guard(request).authorize(request, name, actions)
            request.scope.setdefault("state", {})["principal"] = caller
            return await handler(request)

        endpoint.__name__ = handler.__name__
        endpoint.__doc__ = handler.__doc__
        endpoint.required_actions = actions  # type: ignore[attr-defined]
        return endpoint

    return wrap
