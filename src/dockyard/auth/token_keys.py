"""Token-signing keys: created on first start, stored in the DB (private half sealed with the server secret) so
that every replica signs and verifies with the same keys; rotated with ``dockyard token-key rotate``.

The newest unretired key signs; every key that is not older than the longest token lifetime since it retired
still verifies, so rotation never cuts off tokens already handed out. Tokens carry the key's id in ``kid``.

A server process loads the ring on the first token it signs or verifies (``signing_key``, ``public_key``), and
``cryptography`` with it: a process that never sees a token neither reads the keys nor loads the library.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import insert, select, update

from dockyard.auth.secrets import SecretBox
from dockyard.db.engine import Database
from dockyard.models import SigningKey
from dockyard.models.base import utcnow

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
_RELOAD_INTERVAL = 30.0  # seconds between checks for a key another replica rotated in
_MISS_RELOAD_INTERVAL = 1.0  # an unknown kid triggers a reload at most this often


@dataclass(frozen=True, slots=True)
class LoadedKey:
    kid: str
    private: ec.EllipticCurvePrivateKey | None
    public: ec.EllipticCurvePublicKey
    retired: bool


def key_id(public: ec.EllipticCurvePublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 public key."""
    numbers = public.public_numbers()

    def b64(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes(32, "big")).rstrip(b"=").decode()

    canonical = json.dumps(
        {"crv": "P-256", "kty": "EC", "x": b64(numbers.x), "y": b64(numbers.y)}, separators=(",", ":"), sort_keys=True
    )
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


class KeyRing:
    """Signing and verification keys, cached in memory and reloaded from the DB when they may have changed."""

    def __init__(self, db: Database, box: SecretBox, verify_horizon: timedelta) -> None:
        self._db = db
        self._box = box
        self._horizon = verify_horizon
        self._keys: dict[str, LoadedKey] = {}
        self._signing: LoadedKey | None = None
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._first_load = asyncio.Lock()

    async def ensure(self) -> None:
        """Create the first key if there is none (safe when several replicas start at once), then load."""
        await self.create_if_missing()
        await self.reload()

    async def create_if_missing(self) -> bool:
        """Create the first key if there is none, without loading the ring (each start of a server: the keys are
        loaded by the first token). Returns whether it created one."""
        async with self._db.read() as conn:
            if (await conn.execute(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1))).first():
                return False
        async with self._db.write() as conn:
            active = (
                await conn.execute(select(SigningKey.kid).where(SigningKey.retired_at.is_(None)).limit(1))
            ).first()
            if active is None:
                await conn.execute(insert(SigningKey).values(**self._new_key_row()))
            return active is None

    async def rotate(self) -> str:
        """Retire the current keys and make a new one; returns the new key id."""
        row = self._new_key_row()
        async with self._db.write() as conn:
            await conn.execute(update(SigningKey).where(SigningKey.retired_at.is_(None)).values(retired_at=utcnow()))
            await conn.execute(insert(SigningKey).values(**row))
        await self.reload()
        return str(row["kid"])

    def _new_key_row(self) -> dict[str, object]:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public_pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            "kid": key_id(private.public_key()),
            "algorithm": ALGORITHM,
            "private_key": self._box.seal(pem),
            "public_key": public_pem.decode(),
            "created_at": utcnow(),
            "retired_at": None,
        }

    async def reload(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        async with self._lock:
            cutoff = utcnow() - self._horizon
            async with self._db.read(consistent=True) as conn:
                rows = (
                    await conn.execute(
                        select(SigningKey)
                        .where((SigningKey.retired_at.is_(None)) | (SigningKey.retired_at > cutoff))
                        .order_by(SigningKey.created_at)
                    )
                ).all()
            keys: dict[str, LoadedKey] = {}
            signing: LoadedKey | None = None
            for row in rows:
                public = serialization.load_pem_public_key(row.public_key.encode())
                if not isinstance(public, ec.EllipticCurvePublicKey):
                    continue
                private = None
                if row.retired_at is None:
                    loaded = serialization.load_pem_private_key(self._box.open(row.private_key), password=None)
                    if isinstance(loaded, ec.EllipticCurvePrivateKey):
                        private = loaded
                key = LoadedKey(row.kid, private, public, row.retired_at is not None)
                keys[row.kid] = key
                if private is not None:
                    signing = key  # newest unretired key wins (rows ordered by creation)
            self._keys = keys
            self._signing = signing
            self._loaded_at = time.monotonic()

    async def _load_once(self) -> None:
        """Load the ring on its first use, once however many first requests wait for it."""
        if self._loaded_at == 0.0:
            async with self._first_load:
                if self._loaded_at == 0.0:
                    await self.reload()

    async def signing_key(self) -> LoadedKey:
        await self._load_once()
        if self._signing is None or time.monotonic() - self._loaded_at > _RELOAD_INTERVAL:
            await self.reload()
        if self._signing is None:
            await self.ensure()
        assert self._signing is not None  # ensure() created one
        return self._signing

    def cached_public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        key = self._keys.get(kid)
        return key.public if key is not None else None

    async def public_key(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The verification key for ``kid``; an unknown id reloads from the DB (rate-limited)."""
        await self._load_once()
        key = self._keys.get(kid)
        if key is None:
            # At most one reload per interval whatever the callers send: a miss right after a reload waits for
            # the next one (so a key rotated in by another replica a moment ago is still found).
            loaded_at = self._loaded_at
            wait = _MISS_RELOAD_INTERVAL - (time.monotonic() - loaded_at)
            if wait > 0:
                await asyncio.sleep(wait)
            if self._loaded_at == loaded_at:
                await self.reload()
            key = self._keys.get(kid)
        return key.public if key is not None else None

    def jwks(self) -> dict[str, object]:
        """The public keys as a JWK Set (served at ``/api/v2/.well-known/jwks.json``)."""
        out = []
        for key in self._keys.values():
            numbers = key.public.public_numbers()
            out.append(
                {
                    "kty": "EC",
                    "crv": "P-256",
                    "kid": key.kid,
                    "use": "sig",
                    "alg": ALGORITHM,
                    "x": base64.urlsafe_b64encode(numbers.x.to_bytes(32, "big")).rstrip(b"=").decode(),
                    "y": base64.urlsafe_b64encode(numbers.y.to_bytes(32, "big")).rstrip(b"=").decode(),
                }
            )
        return {"keys": out}
