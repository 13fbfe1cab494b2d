"""Managing trust: a namespace's trusted public keys, its trusted keyless identities and its trust policies
(namespace default and per-repository overrides). Only the namespace's owners (and site administrators) change or
read them; every change is audited, and a change of keys or identities re-verifies the namespace's signed images
(``dockyard.trust.reverify``) in the background."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox
from dockyard.authz.authorizer import NamespaceResource, Permission, require
from dockyard.authz.principal import Principal
from dockyard.core.names import namespace_of, validate_name
from dockyard.db.engine import Database
from dockyard.errors import Conflict, Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import NamespaceSigningKey, TrustedIdentity, TrustedKey, TrustPolicy
from dockyard.models.base import utcnow
from dockyard.signing.keyless import MAX_ISSUER_CHARS, compile_subject, identity_id
from dockyard.signing.keys import PrivateKey, algorithm_of, key_id, load_public_key, public_key_pem
from dockyard.trust.checker import MODES
from dockyard.trust.reverify import enqueue_reverify

MAX_KEYS = 50
MAX_IDENTITIES = 50
MAX_EXEMPT = 100


@dataclass(frozen=True, slots=True)
class KeyView:
    key_id: str
    name: str
    algorithm: str
    public_key: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IdentityView:
    identity_id: str
    name: str
    issuer: str
    subject: str
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PolicyView:
    namespace: str
    repository: str | None
    mode: str
    exempt: tuple[str, ...]
    inherited: bool  # no row of its own: the namespace's default (or off) applies
    updated_by: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class ManagedKeyView:
    namespace: str
    key_id: str
    public_key: str
    created_by: str
    created_at: datetime


class TrustService:
    def __init__(self, db: Database, box: SecretBox | None = None) -> None:
        self.db = db
        self.box = box

    async def _owner(self, conn: AsyncConnection, actor: Principal, namespace: str) -> None:
        """Unknown namespace: NotFound; a namespace the actor does not own: Denied (``authz.authorizer``)."""
        await require(
            conn, actor, Permission.NAMESPACE_ADMIN, NamespaceResource(namespace), doing="manage its signing trust"
        )

    # -- keys -----------------------------------------------------------------------------------------------------

    async def list_keys(self, actor: Principal, namespace: str) -> list[KeyView]:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            rows = (
                await conn.execute(select(TrustedKey).where(TrustedKey.namespace == namespace).order_by(TrustedKey.id))
            ).all()
        return [KeyView(r.key_id, r.name, r.algorithm, r.public_key, r.created_by, r.created_at) for r in rows]

    async def add_key(
        self, actor: Principal, namespace: str, *, name: str, public_key: str, source_ip: str = ""
    ) -> KeyView:
        if not name or len(name) > 100 or not name.isprintable():
            raise Invalid("key", "name must be 1 to 100 printable characters")
        if len(public_key) > 16_384:
            raise Invalid("key", "public_key is too large")
        try:
            key = load_public_key(public_key.encode())
        except ValueError as exc:
            raise Invalid("key", f"public_key: {exc}") from exc
        kid, algorithm, now = key_id(key), algorithm_of(key), utcnow()
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            existing = (
                await conn.execute(
                    select(TrustedKey.id).where(TrustedKey.namespace == namespace, TrustedKey.key_id == kid)
                )
            ).first()
            if existing is not None:
                raise Conflict("key", "this key is already trusted", {"key_id": kid})
            count = len((await conn.execute(select(TrustedKey.id).where(TrustedKey.namespace == namespace))).all())
            if count >= MAX_KEYS:
                raise Invalid("key", f"at most {MAX_KEYS} trusted keys per namespace")
            await conn.execute(
                insert(TrustedKey).values(
                    namespace=namespace,
                    key_id=kid,
                    name=name,
                    algorithm=algorithm,
                    public_key=public_key.strip() + "\n",
                    created_by=actor.audit_name,
                    created_at=now,
                )
            )
            await _anchors_changed(
                conn,
                actor,
                namespace,
                "signing.key.add",
                source_ip,
                {"key_id": kid, "name": name, "algorithm": algorithm},
            )
        return KeyView(kid, name, algorithm, public_key.strip() + "\n", actor.audit_name, now)

    async def remove_key(self, actor: Principal, namespace: str, kid: str, *, source_ip: str = "") -> None:
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            removed = await conn.execute(
                delete(TrustedKey).where(TrustedKey.namespace == namespace, TrustedKey.key_id == kid)
            )
            if removed.rowcount != 1:
                raise NotFound("key", "no such trusted key", {"key_id": kid[:80]})
            await _anchors_changed(conn, actor, namespace, "signing.key.remove", source_ip, {"key_id": kid})

    # -- keyless identities ---------------------------------------------------------------------------------------

    async def list_identities(self, actor: Principal, namespace: str) -> list[IdentityView]:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            rows = (
                await conn.execute(
                    select(TrustedIdentity).where(TrustedIdentity.namespace == namespace).order_by(TrustedIdentity.id)
                )
            ).all()
        return [IdentityView(r.identity_id, r.name, r.issuer, r.subject, r.created_by, r.created_at) for r in rows]

    async def add_identity(
        self, actor: Principal, namespace: str, *, issuer: str, subject: str, name: str = "", source_ip: str = ""
    ) -> IdentityView:
        """Trust keyless signatures whose certificate names OIDC issuer ``issuer`` and a subject (e-mail, URI)
        that ``subject``, a regular expression, matches in full."""
        issuer, name = issuer.strip(), name.strip() or subject[:100]
        if not issuer.startswith(("https://", "http://")) or len(issuer) > MAX_ISSUER_CHARS or not issuer.isprintable():
            raise Invalid("identity", f"issuer must be the OIDC issuer URL (http(s)://…, at most {MAX_ISSUER_CHARS})")
        try:
            compile_subject(subject)
        except ValueError as exc:
            raise Invalid("identity", f"subject: {exc}") from exc
        if not subject.isprintable():
            raise Invalid("identity", "subject must be printable")
        if len(name) > 100 or not name.isprintable():
            raise Invalid("identity", "name must be at most 100 printable characters")
        iid, now = identity_id(issuer, subject), utcnow()
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            rows = (
                (await conn.execute(select(TrustedIdentity.identity_id).where(TrustedIdentity.namespace == namespace)))
                .scalars()
                .all()
            )
            if iid in rows:
                raise Conflict("identity", "this identity is already trusted", {"identity_id": iid})
            if len(rows) >= MAX_IDENTITIES:
                raise Invalid("identity", f"at most {MAX_IDENTITIES} trusted identities per namespace")
            await conn.execute(
                insert(TrustedIdentity).values(
                    namespace=namespace,
                    identity_id=iid,
                    name=name,
                    issuer=issuer,
                    subject=subject,
                    created_by=actor.audit_name,
                    created_at=now,
                )
            )
            await _anchors_changed(
                conn,
                actor,
                namespace,
                "signing.identity.add",
                source_ip,
                {"identity_id": iid, "issuer": issuer, "subject": subject},
            )
        return IdentityView(iid, name, issuer, subject, actor.audit_name, now)

    async def remove_identity(self, actor: Principal, namespace: str, iid: str, *, source_ip: str = "") -> None:
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            removed = await conn.execute(
                delete(TrustedIdentity).where(
                    TrustedIdentity.namespace == namespace, TrustedIdentity.identity_id == iid
                )
            )
            if removed.rowcount != 1:
                raise NotFound("identity", "no such trusted identity", {"identity_id": iid[:80]})
            await _anchors_changed(conn, actor, namespace, "signing.identity.remove", source_ip, {"identity_id": iid})

    # -- the namespace's managed signing key ----------------------------------------------------------------------

    async def managed_key(self, actor: Principal, namespace: str) -> ManagedKeyView:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            row = (
                await conn.execute(select(NamespaceSigningKey).where(NamespaceSigningKey.namespace == namespace))
            ).first()
        if row is None:
            raise NotFound("key", "this namespace has no managed signing key", {"namespace": namespace})
        return ManagedKeyView(namespace, row.key_id, row.public_key, row.created_by, row.created_at)

    async def create_managed_key(self, actor: Principal, namespace: str, *, source_ip: str = "") -> ManagedKeyView:
        """Generate (or replace) the namespace's Dockyard-managed signing key and trust its public half. A replaced
        key stays trusted until an owner removes it, so images it signed keep verifying."""
        if self.box is None:
            raise Invalid("key", "managed signing keys need the server secret")
        private = ec.generate_private_key(ec.SECP256R1())
        private_pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public_pem = public_key_pem(private.public_key()).decode()
        kid, now = key_id(private.public_key()), utcnow()
        values = {
            "key_id": kid,
            "public_key": public_pem,
            "private_key": self.box.seal(private_pem),
            "created_by": actor.audit_name,
            "created_at": now,
        }
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            changed = await conn.execute(
                update(NamespaceSigningKey).where(NamespaceSigningKey.namespace == namespace).values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(NamespaceSigningKey).values(namespace=namespace, **values))
            await conn.execute(
                insert(TrustedKey).values(
                    namespace=namespace,
                    key_id=kid,
                    name="dockyard-managed",
                    algorithm=algorithm_of(private.public_key()),
                    public_key=public_pem,
                    created_by=actor.audit_name,
                    created_at=now,
                )
            )
            await _anchors_changed(
                conn,
                actor,
                namespace,
                "signing.key.add",
                source_ip,
                {"key_id": kid, "name": "dockyard-managed", "managed": True},
            )
        return ManagedKeyView(namespace, kid, public_pem, actor.audit_name, now)

    async def managed_private_key(self, namespace: str) -> PrivateKey:
        """The namespace's managed private key, for signing on the server (builds, ``dockyard sign``)."""
        if self.box is None:
            raise Invalid("key", "managed signing keys need the server secret")
        async with self.db.read() as conn:
            sealed = (
                await conn.execute(
                    select(NamespaceSigningKey.private_key).where(NamespaceSigningKey.namespace == namespace)
                )
            ).scalar_one_or_none()
        if sealed is None:
            raise NotFound("key", "this namespace has no managed signing key", {"namespace": namespace})
        loaded = serialization.load_pem_private_key(self.box.open(sealed), password=None)
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise Invalid("key", "the managed key is not an ECDSA key")
        return loaded

    # -- policies -------------------------------------------------------------------------------------------------

    async def get_policy(self, actor: Principal, namespace: str, repository: str | None) -> PolicyView:
        async with self.db.read(consistent=True) as conn:
            await self._owner(conn, actor, namespace)
            return await _policy_view(conn, namespace, repository)

    async def set_policy(
        self,
        actor: Principal,
        namespace: str,
        repository: str | None,
        *,
        mode: str,
        exempt: list[str] | None = None,
        source_ip: str = "",
    ) -> PolicyView:
        """Set the namespace's default (``repository`` None) or a repository's own policy."""
        if mode not in MODES:
            raise Invalid("policy", f"mode must be one of {list(MODES)}")
        patterns = list(dict.fromkeys(exempt or []))
        if len(patterns) > MAX_EXEMPT or any(not p or len(p) > 300 or not p.isprintable() for p in patterns):
            raise Invalid("policy", f"exempt: at most {MAX_EXEMPT} printable globs of at most 300 characters")
        if repository is not None:
            validate_name(repository)
            if namespace_of(repository) != namespace:
                raise Invalid("policy", "the repository is not in this namespace")
        scope = repository or ""
        now = utcnow()
        values = {"mode": mode, "exempt": json.dumps(patterns), "updated_by": actor.audit_name, "updated_at": now}
        async with self.db.write() as conn:
            await self._owner(conn, actor, namespace)
            changed = await conn.execute(
                update(TrustPolicy)
                .where(TrustPolicy.namespace == namespace, TrustPolicy.repository == scope)
                .values(**values)
            )
            if changed.rowcount == 0:
                await conn.execute(insert(TrustPolicy).values(namespace=namespace, repository=scope, **values))
            await record_audit(
                conn,
                namespace,
                "trust.policy.change",
                actor=actor.audit_name,
                target=repository or namespace,
                source_ip=source_ip,
                data={"mode": mode, "exempt": patterns},
            )
            return await _policy_view(conn, namespace, repository)


async def _anchors_changed(
    conn: AsyncConnection, actor: Principal, namespace: str, action: str, source_ip: str, data: dict[str, object]
) -> None:
    """A change of what ``namespace`` trusts (a key or an identity): audited, and its signed images re-verified,
    both in the transaction that made the change."""
    await record_audit(
        conn, namespace, action, actor=actor.audit_name, target=namespace, source_ip=source_ip, data=data
    )
    await enqueue_reverify(conn, namespace)


async def _policy_view(conn: AsyncConnection, namespace: str, repository: str | None) -> PolicyView:
    rows = {
        row.repository: row
        for row in (
            await conn.execute(
                select(TrustPolicy).where(
                    TrustPolicy.namespace == namespace, TrustPolicy.repository.in_(["", repository or ""])
                )
            )
        ).all()
    }
    own = rows.get(repository or "")
    row = own or rows.get("")
    if row is None:
        return PolicyView(namespace, repository, "off", (), True, "", None)
    return PolicyView(
        namespace,
        repository,
        row.mode,
        tuple(json.loads(row.exempt or "[]")),
        own is None,
        row.updated_by,
        row.updated_at,
    )
