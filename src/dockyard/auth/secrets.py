"""Secrets at rest: argon2id password hashes, SHA-256 fingerprints of random tokens, and the server secret's
symmetric encryption (Fernet) for keys stored in the DB. ``cryptography`` is loaded on the first seal or open (~9 MiB
of a server process that may never need it: ``SecretBox`` is built at start for every service that might)."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from dockyard.settings import Settings

PAT_PREFIX = "dy_pat_"
ROBOT_PREFIX = "dy_rbt_"
OAT_PREFIX = "dy_oat_"  # organization access tokens (Docker Hub: dckr_oat_)
CLI_PREFIX = "dy_cli_"  # the CLI secret of a single sign-on user (accounts/oidc_users.py), Harbor's model
SCIM_PREFIX = "dy_scim_"  # an organization's SCIM bearer token (accounts/scim_tokens.py)
_SHA256 = "sha256$"

# argon2id with RFC 9106's second recommended parameter set (64 MiB, 3 passes, 4 lanes) unless the process's
# settings say otherwise (configure_password_hashing). Verification takes the cost from the stored hash.
_HASHER = PasswordHasher()
# Compared when a robot does not exist, so that a miss costs as much as a wrong robot secret.
_DUMMY_ROBOT_HASH = _SHA256 + hashlib.sha256(secrets.token_bytes(32)).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the account does not exist, so that a miss costs as much as a wrong password. Made on first
    use, not at import: hashing costs 64 MiB and a tenth of a second in every process that imports this module."""
    return _HASHER.hash(secrets.token_urlsafe(16))


def configure_password_hashing(*, memory_kib: int, time_cost: int, parallelism: int) -> None:
    """Set the argon2id cost of the password hashes this process makes (the settings ``password_hash_*``; called
    where a process reads its settings: the server app and the CLI). Hashes already stored keep their own cost."""
    global _HASHER
    memory_kib = max(memory_kib, 8 * parallelism)  # argon2's own floor: 8 KiB per lane
    current = _HASHER
    if (current.memory_cost, current.time_cost, current.parallelism) == (memory_kib, time_cost, parallelism):
        return
    _HASHER = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    _dummy_hash.cache_clear()  # a miss must cost what a hit costs under the new parameters


def configure_password_hashing_from(settings: Settings) -> None:
    configure_password_hashing(
        memory_kib=settings.password_hash_memory_kib,
        time_cost=settings.password_hash_time_cost,
        parallelism=settings.password_hash_parallelism,
    )


def new_token(prefix: str) -> str:
    """A random secret with a recognisable prefix (secret scanners can match it): 256 bits of entropy."""
    return prefix + secrets.token_urlsafe(32)


def fingerprint(secret: str) -> str:
    """SHA-256 hex of a random token: the form in which tokens are stored and looked up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def hash_robot_secret(secret: str) -> str:
    return _SHA256 + fingerprint(secret)


def hash_password_sync(password: str) -> str:
    return _HASHER.hash(password)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_HASHER.hash, password)


def _verify_sync(stored: str | None, candidate: str) -> bool:
    if stored is not None and stored.startswith(_SHA256):
        return hmac.compare_digest(stored, hash_robot_secret(candidate))
    dummy = _dummy_hash()  # made before either branch, so that the first miss costs no more than the first hit
    try:
        return _HASHER.verify(stored or dummy, candidate) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def verify_robot_secret(stored: str | None, candidate: str) -> bool:
    """True when ``candidate`` is the robot secret whose SHA-256 is ``stored``. Cheap (robot secrets are random,
    256 bits: no stretching needed), and as cheap when ``stored`` is None or not a SHA-256 (then False)."""
    known = stored is not None and stored.startswith(_SHA256)
    match = hmac.compare_digest(stored if known and stored else _DUMMY_ROBOT_HASH, hash_robot_secret(candidate))
    return match and known


async def verify_secret(stored: str | None, candidate: str) -> bool:
    """True when ``candidate`` matches the stored hash (argon2id or a robot's SHA-256). Runs in a thread:
    argon2 deliberately costs tens of milliseconds. ``stored=None`` takes as long and returns False."""
    return await asyncio.to_thread(_verify_sync, stored, candidate)


class SecretBox:
    """Encrypts small values with a key derived from the server secret (HKDF-SHA256 → Fernet)."""

    def __init__(self, server_secret: str) -> None:
        if len(server_secret) < 16:
            raise ValueError("the server secret must be at least 16 characters")
        self._secret = server_secret

    @functools.cached_property
    def _fernet(self) -> Fernet:
        from cryptography.fernet import Fernet
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"dockyard signing keys").derive(
            self._secret.encode()
        )
        return Fernet(base64.urlsafe_b64encode(key))

    def seal(self, plaintext: bytes) -> str:
        return self._fernet.encrypt(plaintext).decode()

    def open(self, sealed: str) -> bytes:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(sealed.encode())
        except InvalidToken as exc:
            raise ValueError("cannot decrypt: the server secret differs from the one that sealed this value") from exc
