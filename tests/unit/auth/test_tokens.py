"""Token signing and verification: round trips, every way a token can be wrong, key rotation across replicas."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import jwt
import pytest

from dockyard.auth.scopes import ResourceScope
from dockyard.auth.secrets import SecretBox
from dockyard.auth.token_keys import KeyRing
from dockyard.auth.tokens import API_AUDIENCE, TokenService
from dockyard.authz.principal import ANONYMOUS, Principal
from dockyard.db.engine import Database
from dockyard.errors import Unauthorized
from dockyard.migrations.runner import upgrade
from dockyard.settings import Settings

SECRET = "unit-test-server-secret-0123456789"
ALICE = Principal("user", 7, "alice")
PULL = [ResourceScope("repository", "alice/app", ("pull",))]


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    await upgrade(database)
    yield database
    await database.close()


async def service(db: Database, **overrides: object) -> TokenService:
    settings = Settings(secret_key=SECRET, **overrides)  # type: ignore[arg-type]
    ring = KeyRing(db, SecretBox(SECRET), timedelta(days=30))
    await ring.ensure()
    return TokenService(ring, settings)


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def test_round_trip_carries_identity_and_access(db: Database) -> None:
    tokens = await service(db)
    issued = await tokens.issue_registry(ALICE, "registry.test", PULL)
    verified = await tokens.verify(issued.token, audience="registry.test", use="registry")
    assert verified.subject == "alice"
    assert verified.account_id == 7
    assert verified.actions("repository", "alice/app") == {"pull"}
    assert verified.actions("repository", "other/app") == frozenset()
    header = jwt.get_unverified_header(issued.token)
    assert header["alg"] == "ES256"
    assert header["kid"]


async def test_refresh_and_api_tokens_carry_the_credential_generation(db: Database) -> None:
    tokens = await service(db)
    alice = replace(ALICE, credential_generation=3)
    refresh = await tokens.issue_refresh(alice, "registry.test", "docker")
    verified = await tokens.verify(refresh.token, audience="registry.test", use="refresh")
    assert (verified.generation, verified.jti) == (3, refresh.jti)
    api = await tokens.verify((await tokens.issue_api(alice)).token, audience=API_AUDIENCE, use="api")
    assert api.generation == 3
    # A principal without one (never the case for a signed-in account) gives a token without ``gen``.
    bare = await tokens.verify((await tokens.issue_api(ALICE)).token, audience=API_AUDIENCE, use="api")
    assert bare.generation is None
    assert "gen" not in bare.claims


async def test_anonymous_token_has_empty_subject(db: Database) -> None:
    tokens = await service(db)
    issued = await tokens.issue_registry(ANONYMOUS, "registry.test", PULL)
    verified = await tokens.verify(issued.token, audience="registry.test", use="registry")
    assert verified.subject == ""
    assert verified.account_id is None


async def test_wrong_audience_and_wrong_use_are_refused(db: Database) -> None:
    tokens = await service(db)
    issued = await tokens.issue_registry(ALICE, "registry.test", PULL)
    with pytest.raises(Unauthorized):
        await tokens.verify(issued.token, audience="other.test", use="registry")
    refresh = await tokens.issue_refresh(ALICE, "registry.test", "docker")
    with pytest.raises(Unauthorized, match="wrong kind"):
        await tokens.verify(refresh.token, audience="registry.test", use="registry")


async def test_expired_token_is_refused(db: Database) -> None:
    tokens = await service(db, token_lifetime_seconds=60)
    issued = await tokens.issue_registry(ALICE, "registry.test", PULL)
    _header_b64, payload_b64, _ = issued.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    claims["exp"] = int(time.time()) - 120
    key = (await tokens.keys.signing_key()).private
    assert key is not None  # the signing key is this server's own: its private half is loaded
    expired = jwt.encode(claims, key, algorithm="ES256", headers=jwt.get_unverified_header(issued.token))
    with pytest.raises(Unauthorized, match="expired"):
        await tokens.verify(expired, audience="registry.test", use="registry")


async def test_tampered_payload_alg_none_hmac_confusion_and_unknown_kid(db: Database) -> None:
    tokens = await service(db)
    issued = await tokens.issue_registry(ALICE, "registry.test", PULL)
    header_b64, payload_b64, signature = issued.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    header = jwt.get_unverified_header(issued.token)

    widened = {**claims, "access": [{"type": "repository", "name": "alice/app", "actions": ["pull", "push"]}]}
    tampered = f"{header_b64}.{b64(widened)}.{signature}"
    none = f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': header['kid']})}.{b64(claims)}."
    public_pem = (await tokens.keys.signing_key()).public.public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.PEM,
        __import__(
            "cryptography.hazmat.primitives.serialization", fromlist=["PublicFormat"]
        ).PublicFormat.SubjectPublicKeyInfo,
    )
    import hashlib
    import hmac

    hs_header = b64({"alg": "HS256", "typ": "JWT", "kid": header["kid"]})
    hs_body = b64(claims)
    hs_sig = (
        base64.urlsafe_b64encode(hmac.new(public_pem, f"{hs_header}.{hs_body}".encode(), hashlib.sha256).digest())
        .rstrip(b"=")
        .decode()
    )
    confused = f"{hs_header}.{hs_body}.{hs_sig}"
    private = (await tokens.keys.signing_key()).private
    assert private is not None
    unknown_kid = jwt.encode(claims, private, algorithm="ES256", headers={"kid": "not-a-key"})
    truncated = issued.token[:-10]
    for bad in (tampered, none, confused, unknown_kid, truncated, "garbage", ""):
        with pytest.raises(Unauthorized):
            await tokens.verify(bad, audience="registry.test", use="registry")


async def test_rotation_keeps_old_tokens_valid_and_replicas_follow(db: Database) -> None:
    first = await service(db)
    old = await first.issue_registry(ALICE, "registry.test", PULL)
    replica = await service(db)  # another process over the same DB
    new_kid = await first.keys.rotate()
    fresh = await first.issue_registry(ALICE, "registry.test", PULL)
    assert jwt.get_unverified_header(fresh.token)["kid"] == new_kid
    assert jwt.get_unverified_header(old.token)["kid"] != new_kid
    # The replica has never seen the new key: an unknown kid reloads the key ring from the DB.
    await replica.verify(fresh.token, audience="registry.test", use="registry")
    await replica.verify(old.token, audience="registry.test", use="registry")


async def test_private_keys_are_sealed_with_the_server_secret(db: Database) -> None:
    await service(db)
    async with db.read() as conn:
        from sqlalchemy import text

        stored = (await conn.execute(text("SELECT private_key FROM signing_keys"))).scalar_one()
    assert "PRIVATE KEY" not in stored
    ring = KeyRing(db, SecretBox("a-different-secret-0123456789"), timedelta(days=1))
    with pytest.raises(ValueError, match="server secret"):
        await ring.reload()


async def test_a_server_loads_the_key_ring_once_on_the_first_tokens(db: Database) -> None:
    """The lifespan no longer loads the ring: the first tokens do, once however many arrive together, and a
    ring that only had its key created at start (``create_if_missing``) signs and verifies."""
    import asyncio

    issuer = await service(db)
    issued = await issuer.issue_registry(ALICE, "registry.test", PULL)
    ring = KeyRing(db, SecretBox(SECRET), timedelta(days=30))
    assert await ring.create_if_missing() is False  # the key exists: nothing created, nothing loaded
    assert ring.cached_public_key(jwt.get_unverified_header(issued.token)["kid"]) is None
    reloads = 0
    reload = ring.reload

    async def counted() -> None:
        nonlocal reloads
        reloads += 1
        await reload()

    ring.reload = counted  # type: ignore[method-assign]
    tokens = TokenService(ring, Settings(secret_key=SECRET))
    verified = await asyncio.gather(
        *(tokens.verify(issued.token, audience="registry.test", use="registry") for _ in range(20))
    )
    assert {v.subject for v in verified} == {"alice"}
    assert reloads == 1
    mine = await tokens.issue_registry(ALICE, "registry.test", PULL)
    assert (await issuer.verify(mine.token, audience="registry.test", use="registry")).subject == "alice"
    assert reloads == 1
