"""The OpenID Connect relying party: sign-in at one provider with the authorization code flow and PKCE.

``OidcClient.begin`` reads the provider's discovery document (``<issuer>/.well-known/openid-configuration``,
checked with Authlib's ``OpenIDProviderMetadata``), stores a pending sign-in (``oidc_logins``: the SHA-256 of a
random ``state``, a random ``nonce``, the PKCE code verifier sealed with the server secret, where to go
afterwards; ten minutes) and returns the authorization URL (Authlib's ``prepare_grant_uri``, ``S256`` challenge).
``OidcClient.complete`` takes the callback's ``state`` and ``code``: the pending sign-in is used up (one
callback per state), the code is exchanged at the token endpoint with the verifier and the client's credentials
(``client_secret_basic``, or ``client_secret_post`` when that is all the provider takes), and the ID token is
verified with joserfc — its signature against the provider's JWKS (an asymmetric algorithm the provider
announces; the key set is fetched again once when a ``kid`` is unknown, for key rotation), ``iss`` equal to the
discovered issuer, ``aud`` holding the client id (and ``azp`` naming it when there are several), ``exp``/``iat``
with a minute of leeway, ``sub``, and ``nonce`` equal to the stored one. Claims the ID token lacks (the user name,
the groups: some providers put them only in the UserInfo response) are taken from the UserInfo endpoint when
the provider has one, for the same ``sub``.

Errors: ``OidcUnavailable`` when the provider cannot be reached or answers something unusable (the web hub shows
an error page and the local sign-in keeps working); ``OidcRefused`` when the sign-in itself is not valid (unknown,
used or expired state, an error the provider sent back, a refused code, an ID token that fails verification).
The discovery document is read at every ``begin`` (so that a provider that is down is noticed before the browser
is sent to it) and kept for the callbacks; the key set is kept until the provider shows a new ``kid``. A failure
is not kept.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
from authlib.common.security import generate_token
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.discovery import OpenIDProviderMetadata
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import delete, insert, select

from dockyard.auth.oidc_results import OidcRefused, OidcSignIn, OidcUnavailable
from dockyard.auth.secrets import SecretBox, fingerprint
from dockyard.db.engine import Database
from dockyard.models import OidcLogin
from dockyard.models.base import utcnow
from dockyard.settings import Settings

_LOGIN_LIFETIME = timedelta(minutes=10)
_METADATA_TTL = 3600.0
_JWKS_REFRESH_FLOOR = 30.0  # an unknown kid fetches the key set again at most this often
_LEEWAY = 60
_MAX_DOCUMENT = 512 * 1024
# Asymmetric signatures only: an HS256 ID token would be signed with the client secret, which Dockyard holds too.
_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


@dataclass(frozen=True, slots=True)
class _Provider:
    metadata: OpenIDProviderMetadata
    fetched_at: float

    @property
    def issuer(self) -> str:
        return str(self.metadata["issuer"])


class OidcClient:
    """The one provider of ``Settings.oidc_*``. Safe for concurrent use; ``transport`` is for tests."""

    def __init__(
        self, db: Database, settings: Settings, box: SecretBox, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._db = db
        self._settings = settings
        self._box = box
        self._transport = transport
        self._provider: _Provider | None = None
        self._keys: KeySet | None = None
        self._refreshed_at = -_JWKS_REFRESH_FLOOR  # when an unknown kid last made it fetch the key set again
        self._lock = asyncio.Lock()

    @property
    def display_name(self) -> str:
        return self._settings.oidc_provider_name

    async def begin(self, next_path: str, redirect_uri: str) -> tuple[str, str]:
        """Start a sign-in: (the provider's authorization URL to send the browser to, the ``state`` the browser
        must bring back). Raises ``OidcUnavailable``."""
        # Read afresh at every start: a provider that is down is an error page here, not a browser sent to a dead
        # address (the callback uses what this read).
        provider = await self._discover(fresh=True)
        state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
        now = utcnow()
        async with self._db.write() as conn:
            await conn.execute(delete(OidcLogin).where(OidcLogin.expires_at <= now))
            await conn.execute(
                insert(OidcLogin).values(
                    id=fingerprint(state),
                    nonce=nonce,
                    code_verifier=self._box.seal(verifier.encode()),
                    next_path=next_path[:2000],
                    created_at=now,
                    expires_at=now + _LOGIN_LIFETIME,
                )
            )
        url: str = prepare_grant_uri(
            provider.metadata["authorization_endpoint"],
            self._settings.oidc_client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=" ".join(self._settings.oidc_scopes),
            state=state,
            nonce=nonce,
            code_challenge=create_s256_code_challenge(verifier),
            code_challenge_method="S256",
        )
        return url, state

    async def complete(self, state: str, code: str, redirect_uri: str) -> OidcSignIn:
        """Finish the sign-in of ``state`` with the provider's ``code``. Raises ``OidcRefused`` or
        ``OidcUnavailable``; either way the state is used up."""
        pending = await self._take(state)
        provider = await self._discover()
        tokens = await self._exchange(provider, code, redirect_uri, self._box.open(pending.code_verifier).decode())
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcRefused("the provider's answer has no ID token")
        claims = await self._verify(provider, id_token, pending.nonce)
        access_token = tokens.get("access_token")
        wanted = [self._settings.oidc_username_claim, self._settings.oidc_groups_claim]
        userinfo_endpoint = provider.metadata.get("userinfo_endpoint")
        if any(name and name not in claims for name in wanted) and userinfo_endpoint and isinstance(access_token, str):
            extra = await self._userinfo(str(userinfo_endpoint), access_token)
            if extra.get("sub") != claims["sub"]:
                raise OidcRefused("the provider's UserInfo answer is about another user")
            claims = {**extra, **claims}
        return OidcSignIn(provider.issuer, str(claims["sub"]), claims, pending.next_path)

    async def _take(self, state: str) -> Any:
        if not state or len(state) > 200:
            raise OidcRefused("the sign-in is unknown or has expired; start again")
        async with self._db.write() as conn:
            row = (await conn.execute(select(OidcLogin).where(OidcLogin.id == fingerprint(state)))).first()
            if row is not None:
                await conn.execute(delete(OidcLogin).where(OidcLogin.id == row.id))
        if row is None or row.expires_at <= utcnow():
            raise OidcRefused("the sign-in is unknown or has expired; start again")
        return row

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self._settings.oidc_timeout_seconds, transport=self._transport, follow_redirects=False
        )

    async def _get_json(self, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        try:
            async with self._client() as client:
                response = await client.get(url, headers={"accept": "application/json", **(headers or {})})
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"the identity provider cannot be reached ({type(exc).__name__})") from exc
        if response.status_code != 200 or len(response.content) > _MAX_DOCUMENT:
            raise OidcUnavailable(f"the identity provider answered {response.status_code} for {url}")
        return _json_object(response, OidcUnavailable)

    async def _discover(self, *, fresh: bool = False) -> _Provider:
        provider = self._provider
        if not fresh and provider is not None and time.monotonic() - provider.fetched_at < _METADATA_TTL:
            return provider
        async with self._lock:
            provider = self._provider
            if not fresh and provider is not None and time.monotonic() - provider.fetched_at < _METADATA_TTL:
                return provider
            configured = self._settings.oidc_issuer
            document = await self._get_json(configured.rstrip("/") + "/.well-known/openid-configuration")
            metadata = OpenIDProviderMetadata(document)
            try:
                for check in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri"):
                    getattr(metadata, f"validate_{check}")()
                if not metadata.get("jwks_uri"):
                    raise ValueError('"jwks_uri" is required')
            except ValueError as exc:
                raise OidcUnavailable(f"the identity provider's discovery document is not usable: {exc}") from exc
            # OpenID Connect Discovery §4.3: the document's issuer is the one configured.
            if str(metadata["issuer"]).rstrip("/") != configured.rstrip("/"):
                raise OidcUnavailable("the identity provider's discovery document names another issuer")
            if provider is None or provider.metadata.get("jwks_uri") != metadata.get("jwks_uri"):
                self._keys = None
            self._provider = _Provider(metadata, time.monotonic())
            return self._provider

    async def _key_set(self, provider: _Provider, *, refresh: bool = False) -> KeySet:
        async with self._lock:
            now = time.monotonic()
            if self._keys is not None and not (refresh and now - self._refreshed_at > _JWKS_REFRESH_FLOOR):
                return self._keys
            document = await self._get_json(str(provider.metadata["jwks_uri"]))
            try:
                keys = KeySet.import_key_set(document)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise OidcUnavailable("the identity provider's key set is not usable") from exc
            self._keys = keys
            if refresh:
                self._refreshed_at = now
            return keys

    async def _exchange(self, provider: _Provider, code: str, redirect_uri: str, verifier: str) -> dict[str, Any]:
        if not code or len(code) > 2048:
            raise OidcRefused("the provider sent no authorization code")
        client_id, secret = self._settings.oidc_client_id, self._settings.oidc_client_secret
        methods = provider.metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        extra: dict[str, str] = {}
        headers = {"accept": "application/json", "content-type": "application/x-www-form-urlencoded"}
        if secret and "client_secret_basic" not in methods and "client_secret_post" in methods:
            extra = {"client_id": client_id, "client_secret": secret}
        elif secret:  # RFC 6749 §2.3.1: both form-urlencoded, then Basic
            pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            headers["authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:  # a public client
            extra = {"client_id": client_id}
        body = prepare_token_request(
            "authorization_code", code=code, redirect_uri=redirect_uri, code_verifier=verifier, **extra
        )
        try:
            async with self._client() as client:
                response = await client.post(str(provider.metadata["token_endpoint"]), content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise OidcUnavailable(f"the identity provider cannot be reached ({type(exc).__name__})") from exc
        if response.status_code >= 500:
            raise OidcUnavailable(f"the identity provider's token endpoint answered {response.status_code}")
        answer = _json_object(response, OidcRefused)
        if response.status_code != 200:
            raise OidcRefused(f"the provider refused the authorization code ({answer.get('error', 'error')})")
        return answer

    async def _verify(self, provider: _Provider, id_token: str, nonce: str) -> dict[str, Any]:
        offered = provider.metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [alg for alg in offered if alg in _ALGORITHMS]
        keys = await self._key_set(provider)
        try:
            kid = jws.extract_compact(id_token.encode()).headers().get("kid")
            if kid is not None and all(key.kid != kid for key in keys.keys):  # the provider rotated its keys
                keys = await self._key_set(provider, refresh=True)
            token = jwt.decode(id_token, keys, algorithms=algorithms)
            client_id = self._settings.oidc_client_id
            jwt.JWTClaimsRegistry(
                leeway=_LEEWAY,
                iss={"essential": True, "value": provider.issuer},
                aud={"essential": True, "value": client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            ).validate(token.claims)
        except (JoseError, ValueError) as exc:
            raise OidcRefused(f"the ID token is not valid ({type(exc).__name__})") from exc
        claims = dict(token.claims)
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != client_id:
            raise OidcRefused("the ID token was issued to another client")
        return claims

    async def _userinfo(self, endpoint: str, access_token: str) -> dict[str, Any]:
        return await self._get_json(endpoint, {"authorization": f"Bearer {access_token}"})


def _json_object(response: httpx.Response, error: type[Exception]) -> dict[str, Any]:
    try:
        value = response.json()
    except ValueError:
        raise error("the identity provider's answer is not JSON") from None
    if not isinstance(value, dict):
        raise error("the identity provider's answer is not a JSON object")
    return value
