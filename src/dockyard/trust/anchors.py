"""What a namespace trusts, as the trust checker needs it: its public keys, its keyless identities and the admin's
Sigstore trusted root (``sigstore_trusted_root``), read from the DB and the file and cached for ``CACHE_SECONDS``
per process, so a key revoked on one replica stops counting on every replica within that time.

``Anchors.version`` names the whole set (key ids, identity ids, the trusted root's SHA-256): verification results
are cached under it, so any change — a key added or revoked, an identity, a new trusted root — gives fresh checks.

``dockyard.signing`` (cryptography, PyNaCl) is imported on the first look-up: a server without trust policies
never loads it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from dockyard.db.engine import Database
from dockyard.models import TrustedIdentity, TrustedKey

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

    from dockyard.signing.keyless import KeylessTrust
    from dockyard.signing.keyless import TrustedIdentity as Identity
    from dockyard.signing.keys import PublicKey

log = logging.getLogger("dockyard.trust")
CACHE_SECONDS = 2.0


def set_version(names: list[str]) -> str:
    """One name for a set of names (order does not matter)."""
    return hashlib.sha256(",".join(sorted(names)).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Anchors:
    keys: Mapping[str, PublicKey]
    identities: tuple[Identity, ...]
    keyless: KeylessTrust | None  # None when no trusted root is configured (or it cannot be read)
    version: str = field(default="")

    def __bool__(self) -> bool:
        return bool(self.keys or self.identities)


class AnchorCache:
    def __init__(self, db: Database, trusted_root: Path | None) -> None:
        self.db = db
        self.trusted_root = trusted_root
        self._anchors: dict[str, tuple[float, Anchors]] = {}
        self._root: tuple[float, tuple[float, int] | None, tuple[TrustedRoot, str] | None] = (0.0, None, None)

    def root(self) -> tuple[TrustedRoot, str] | None:
        """The trusted root and its SHA-256, re-read when the file changes (checked every ``CACHE_SECONDS``)."""
        if self.trusted_root is None:
            return None
        now = time.monotonic()
        checked, stamp, loaded = self._root
        if checked > now:
            return loaded
        try:
            stat = self.trusted_root.stat()
            current: tuple[float, int] | None = (stat.st_mtime, stat.st_size)
        except OSError:
            current = None
        if current != stamp or checked == 0.0:
            from dockyard.signing.keyless import load_trusted_root

            try:
                loaded = load_trusted_root(self.trusted_root)
            except ValueError as exc:  # logged once per change of the file, not per request
                log.error("keyless signatures cannot be verified: %s", exc)
                loaded = None
        self._root = (now + CACHE_SECONDS, current, loaded)
        return loaded

    async def get(self, namespace: str) -> Anchors:
        cached = self._anchors.get(namespace)
        now = time.monotonic()
        if cached is not None and cached[0] > now:
            return cached[1]
        from dockyard.signing.keyless import KeylessTrust
        from dockyard.signing.keyless import TrustedIdentity as Identity
        from dockyard.signing.keys import load_public_key

        async with self.db.read() as conn:
            key_rows = (
                await conn.execute(
                    select(TrustedKey.key_id, TrustedKey.public_key).where(TrustedKey.namespace == namespace)
                )
            ).all()
            identity_rows = (
                await conn.execute(
                    select(TrustedIdentity.identity_id, TrustedIdentity.issuer, TrustedIdentity.subject)
                    .where(TrustedIdentity.namespace == namespace)
                    .order_by(TrustedIdentity.id)
                )
            ).all()
        keys: dict[str, PublicKey] = {}
        for row in key_rows:
            try:
                keys[row.key_id] = load_public_key(row.public_key.encode())
            except ValueError:
                log.warning("trusted key %s of %s cannot be loaded", row.key_id, namespace)
        identities = tuple(Identity(row.identity_id, row.issuer, row.subject) for row in identity_rows)
        root = self.root()
        keyless = KeylessTrust(root[0], identities) if root is not None else None
        fingerprint = root[1] if root is not None else ""
        version = set_version([*keys, *(i.identity_id for i in identities), f"root:{fingerprint}"])
        anchors = Anchors(keys, identities, keyless, version)
        if len(self._anchors) > 10_000:
            self._anchors.clear()
        self._anchors[namespace] = (now + CACHE_SECONDS, anchors)
        return anchors

    def forget(self, namespace: str) -> None:
        self._anchors.pop(namespace, None)
