"""The OpenID Connect relying party against a provider faked with httpx's MockTransport: the authorization URL
(PKCE S256, state, nonce), the code exchange (verifier, client authentication), and every way an ID token or a
callback can be wrong — each refused. The real provider, with a browser, is tests/web/test_oidc_pages.py."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from dockyard.auth.oidc import OidcClient
from dockyard.auth.oidc_results import OidcRefused, OidcUnavailable
from dockyard.auth.secrets import SecretBox
from dockyard.db.engine import Database
from dockyard.migrations.runner import upgrade
from dockyard.settings import Settings

SECRET = "unit-test-server-secret-0123456789"
ISSUER = "https://idp.example.test"
CLIENT = "dockyard"
CALLBACK = "https://hub.example.test/login/oidc/callback"


class FakeProvider:
    """Discovery, JWKS, token and UserInfo endpoints; ``claims`` shape the next ID token."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.published = [self.key]
        self.tokens: list[dict[str, str]] = []
        self.claims: dict[str, Any] = {}
        self.header: dict[str, Any] = {"alg": "RS256", "kid": "k1"}
        self.signing_key: Any = self.key
        self.userinfo: dict[str, Any] = {"sub": "u-1"}
        self.discovery: dict[str, Any] = {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "userinfo_endpoint": f"{ISSUER}/me",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "HS256"],
        }
        self.down = False
        self.nonce = ""

    def id_token(self) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "aud": CLIENT, "sub": "u-1", "iat": now, "exp": now + 300, "nonce": self.nonce}
        claims.update(self.claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(self.header, claims, self.signing_key, algorithms=[self.header["alg"]])

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery)
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [k.as_dict(private=False) for k in self.published]})
        if path == "/token":
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            form["authorization"] = request.headers.get("authorization", "")
            self.tokens.append(form)
            return httpx.Response(
                200, json={"access_token": "at-1", "token_type": "Bearer", "id_token": self.id_token()}
            )
        if path == "/me":
            assert request.headers["authorization"] == "Bearer at-1"
            return httpx.Response(200, json=self.userinfo)
        return httpx.Response(404)


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await upgrade(database)
    yield database
    await database.close()


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


def client(db: Database, provider: FakeProvider, **overrides: Any) -> OidcClient:
    settings = Settings(
        secret_key=SECRET,
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT,
        oidc_client_secret="s3cret:/+",
        oidc_scopes=["openid", "profile", "groups"],
        **overrides,
    )
    return OidcClient(db, settings, SecretBox(SECRET), transport=httpx.MockTransport(provider.handle))


async def begin(oidc: OidcClient, provider: FakeProvider, next_path: str = "/r/a/b") -> tuple[str, dict[str, str]]:
    url, state = await oidc.begin(next_path, CALLBACK)
    query = {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
    provider.nonce = query["nonce"]
    return state, query


async def test_authorization_url_and_code_exchange(db: Database, provider: FakeProvider) -> None:
    oidc = client(db, provider)
    state, query = await begin(oidc, provider)
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "openid profile groups"
    assert query["state"] == state
    assert query["code_challenge_method"] == "S256"
    provider.claims = {"preferred_username": "alice", "groups": ["a/b"]}
    signed = await oidc.complete(state, "code-1", CALLBACK)
    assert (signed.issuer, signed.subject, signed.next_path) == (ISSUER, "u-1", "/r/a/b")
    assert signed.claims["groups"] == ["a/b"]
    sent = provider.tokens[0]
    assert sent["grant_type"] == "authorization_code"
    assert sent["code"] == "code-1"
    assert sent["redirect_uri"] == CALLBACK
    challenge = base64.urlsafe_b64encode(hashlib.sha256(sent["code_verifier"].encode()).digest()).rstrip(b"=")
    assert challenge.decode() == query["code_challenge"]
    # RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic.
    assert sent["authorization"] == "Basic " + base64.b64encode(b"dockyard:s3cret%3A%2F%2B").decode()
    assert "client_secret" not in sent


async def test_a_state_is_used_once_and_an_unknown_one_is_refused(db: Database, provider: FakeProvider) -> None:
    oidc = client(db, provider)
    state, _ = await begin(oidc, provider)
    await oidc.complete(state, "code-1", CALLBACK)
    with pytest.raises(OidcRefused):
        await oidc.complete(state, "code-1", CALLBACK)
    with pytest.raises(OidcRefused):
        await oidc.complete("made-up", "code-1", CALLBACK)
    assert len(provider.tokens) == 1  # neither reached the token endpoint


def _other_rsa() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "k1"})


def _hs256_with_the_client_secret(p: FakeProvider) -> None:
    p.header = {"alg": "HS256", "kid": "k1"}
    p.signing_key = OctKey.import_key(b"s3cret:/+" * 4)


BAD_TOKENS: dict[str, Callable[[FakeProvider], None]] = {
    "wrong nonce": lambda p: p.claims.update(nonce="another"),
    "no nonce": lambda p: p.claims.update(nonce=None),
    "wrong audience": lambda p: p.claims.update(aud="someone-else"),
    "several audiences without azp": lambda p: p.claims.update(aud=[CLIENT, "other"]),
    "wrong issuer": lambda p: p.claims.update(iss="https://evil.example.test"),
    "expired": lambda p: p.claims.update(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
    "no subject": lambda p: p.claims.update(sub=None),
    "signed by another key": lambda p: setattr(p, "signing_key", _other_rsa()),
    "HS256 with the client secret": _hs256_with_the_client_secret,
}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_an_id_token_that_fails_verification_is_refused(db: Database, provider: FakeProvider, case: str) -> None:
    oidc = client(db, provider)
    state, _ = await begin(oidc, provider)
    BAD_TOKENS[case](provider)
    with pytest.raises(OidcRefused):
        await oidc.complete(state, "code-1", CALLBACK)


async def test_several_audiences_with_azp_and_a_rotated_key(db: Database, provider: FakeProvider) -> None:
    oidc = client(db, provider)
    state, _ = await begin(oidc, provider)
    provider.claims = {"aud": [CLIENT, "other"], "azp": CLIENT}
    await oidc.complete(state, "c", CALLBACK)
    # The provider rotates to a new key (new kid): the key set is fetched again for it.
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
    provider.published = [provider.key]
    provider.signing_key, provider.header = provider.key, {"alg": "RS256", "kid": "k2"}
    state, _ = await begin(oidc, provider)
    provider.claims = {}
    assert (await oidc.complete(state, "c", CALLBACK)).subject == "u-1"


async def test_missing_claims_come_from_userinfo_for_the_same_subject(db: Database, provider: FakeProvider) -> None:
    oidc = client(db, provider)
    state, _ = await begin(oidc, provider)
    provider.userinfo = {"sub": "u-1", "preferred_username": "alice", "groups": ["x/y"]}
    signed = await oidc.complete(state, "c", CALLBACK)
    assert signed.claims["preferred_username"] == "alice"
    assert signed.claims["groups"] == ["x/y"]
    state, _ = await begin(oidc, provider)
    provider.userinfo = {"sub": "u-2", "preferred_username": "mallory", "groups": ["admins/all"]}
    with pytest.raises(OidcRefused):
        await oidc.complete(state, "c", CALLBACK)


async def test_an_unreachable_or_inconsistent_provider_is_unavailable(db: Database, provider: FakeProvider) -> None:
    provider.down = True
    with pytest.raises(OidcUnavailable):
        await client(db, provider).begin("/", CALLBACK)
    provider.down = False
    provider.discovery["issuer"] = "https://elsewhere.example.test"
    with pytest.raises(OidcUnavailable):
        await client(db, provider).begin("/", CALLBACK)
    provider.discovery["issuer"] = ISSUER
    provider.discovery["authorization_endpoint"] = "not a url"
    with pytest.raises(OidcUnavailable):
        await client(db, provider).begin("/", CALLBACK)


async def test_the_provider_going_down_after_the_redirect(db: Database, provider: FakeProvider) -> None:
    oidc = client(db, provider)
    state, _ = await begin(oidc, provider)
    provider.down = True
    with pytest.raises(OidcUnavailable):
        await oidc.complete(state, "c", CALLBACK)


def test_settings_need_a_client_and_the_openid_scope() -> None:
    with pytest.raises(ValueError, match="oidc_client_id"):
        Settings(oidc_issuer=ISSUER)
    with pytest.raises(ValueError, match="openid"):
        Settings(oidc_issuer=ISSUER, oidc_client_id=CLIENT, oidc_scopes=["profile"])
    with pytest.raises(ValueError, match="group=org/team"):
        Settings(oidc_team_mapping=["admins"])
    mapped = Settings(oidc_team_mapping=["admins=acme/owners", "admins=acme/ops", "dev=acme/dev"])
    assert mapped.oidc_team_map == {"admins": ["acme/owners", "acme/ops"], "dev": ["acme/dev"]}
    assert json.dumps(mapped.oidc_team_map)
