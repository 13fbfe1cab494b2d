"""A hub test environment in the test's own process: a migrated database (SQLite in the embedded run, a
PostgreSQL database of its own in the scale-out run), a filesystem blob store, the registry and hub services,
and factories for accounts, grants and pushed content."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from dockyard.authz.principal import Principal
from dockyard.core.digest import Digest
from dockyard.db.engine import Database
from dockyard.migrations.runner import upgrade
from dockyard.models import Account, OrgMember, Repository, RepositoryPermission, Team, TeamMember
from dockyard.models.base import utcnow
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.registry.uploads import ChunkSpec
from dockyard.repos.audit import AuditLogService
from dockyard.repos.repositories import RepositoryService
from dockyard.repos.tags import TagService
from dockyard.settings import Settings
from dockyard.storage.filesystem import FilesystemBlobStore
from tests.support import backend
from tests.support.checks import unique
from tests.support.schema import seed_sqlite

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Pushed:
    digest: str
    body: bytes
    config: bytes
    layers: list[bytes]
    media_type: str = OCI_MANIFEST

    @property
    def size(self) -> int:
        """What the hub reports as the image's size: config + layers."""
        return len(self.config) + sum(len(layer) for layer in self.layers)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class HubEnv:
    ctx: RegistryContext
    registry: Registry
    repos: RepositoryService
    tags: TagService
    audit: AuditLogService
    _accounts: dict[str, int] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.ctx.db

    def open_server(self) -> HubEnv:
        """The same database and storage as an ``--open`` server sees them (pushes need no account)."""
        ctx = replace(self.ctx, settings=self.ctx.settings.model_copy(update={"open": True}))
        return HubEnv(ctx, Registry.build(ctx), RepositoryService(ctx), TagService(ctx), AuditLogService(ctx))

    # -- accounts ----------------------------------------------------------------------------------------------

    async def user(self, name: str | None = None, *, admin: bool = False) -> Principal:
        name = name or unique("user")
        async with self.db.write() as conn:
            account_id = (
                await conn.execute(
                    insert(Account)
                    .values(name=name, kind="user", is_admin=admin, created_at=utcnow())
                    .returning(Account.id)
                )
            ).scalar_one()
        self._accounts[name] = account_id
        return Principal("user", account_id=account_id, name=name, is_admin=admin)

    async def org(self, name: str | None = None, *, owner: Principal, members: tuple[Principal, ...] = ()) -> str:
        name = name or unique("org")
        async with self.db.write() as conn:
            org_id = (
                await conn.execute(
                    insert(Account).values(name=name, kind="org", created_at=utcnow()).returning(Account.id)
                )
            ).scalar_one()
            rows = [{"org_id": org_id, "user_id": owner.account_id, "role": "owner", "created_at": utcnow()}]
            rows += [
                {"org_id": org_id, "user_id": m.account_id, "role": "member", "created_at": utcnow()} for m in members
            ]
            await conn.execute(insert(OrgMember), rows)
        self._accounts[name] = org_id
        return name

    async def team_grant(self, org: str, repo: str, member: Principal, permission: str) -> None:
        async with self.db.write() as conn:
            repo_id = (await conn.execute(select(Repository.id).where(Repository.name == repo))).scalar_one()
            team_id = (
                await conn.execute(
                    insert(Team)
                    .values(org_id=self._accounts[org], name=unique("t"), created_at=utcnow())
                    .returning(Team.id)
                )
            ).scalar_one()
            await conn.execute(insert(TeamMember).values(team_id=team_id, user_id=member.account_id))
            await conn.execute(
                insert(RepositoryPermission).values(repository_id=repo_id, team_id=team_id, permission=permission)
            )

    async def grant(self, repo: str, principal: Principal, permission: str) -> None:
        async with self.db.write() as conn:
            repo_id = (await conn.execute(select(Repository.id).where(Repository.name == repo))).scalar_one()
            await conn.execute(
                insert(RepositoryPermission).values(
                    repository_id=repo_id, account_id=principal.account_id, permission=permission
                )
            )

    async def set_private(self, repo: str, private: bool) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Repository).where(Repository.name == repo).values(is_private=private))

    async def set_account(self, name: str, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Account).where(Account.name == name).values(**values))

    async def set_columns(self, repo: str, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(Repository).where(Repository.name == repo).values(**values))

    # -- content ----------------------------------------------------------------------------------------------

    async def blob(self, repo: str, data: bytes) -> str:
        digest = sha256(data)
        await self.registry.uploads.monolithic(repo, Digest.parse(digest), _one(data), ChunkSpec(length=len(data)))
        return digest

    async def push_image(
        self,
        repo: str,
        tag: str | None = "latest",
        *,
        arch: str = "amd64",
        os: str = "linux",
        variant: str | None = None,
        history: list[dict[str, Any]] | None = None,
        layers: int = 1,
        layer_blobs: Sequence[bytes] | None = None,
        config: bytes | None = None,
        config_type: str = OCI_CONFIG,
        artifact_type: str | None = None,
        actor: str | None = None,
    ) -> Pushed:
        seed = uuid.uuid4().hex
        if config is None:
            doc: dict[str, Any] = {"architecture": arch, "os": os, "seed": seed}
            if variant:
                doc["variant"] = variant
            if history is not None:
                doc["history"] = history
            config = canonical(doc)
        blobs = (
            list(layer_blobs)
            if layer_blobs is not None
            else [f"layer-{seed}-{i}".encode() * (i + 1) for i in range(layers)]
        )
        await self.blob(repo, config)
        for layer in blobs:
            await self.blob(repo, layer)
        manifest: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": config_type, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)} for b in blobs],
        }
        if artifact_type:
            manifest["artifactType"] = artifact_type
        body = canonical(manifest)
        digest = sha256(body)
        await self.registry.manifests.put(repo, tag or digest, body, OCI_MANIFEST, actor=actor)
        return Pushed(digest, body, config, blobs)

    async def push_index(
        self, repo: str, tag: str, children: list[tuple[Pushed, dict[str, Any] | None]], *, actor: str | None = None
    ) -> Pushed:
        descriptors = []
        for child, platform in children:
            descriptor: dict[str, Any] = {"mediaType": OCI_MANIFEST, "digest": child.digest, "size": len(child.body)}
            if platform is not None:
                descriptor["platform"] = platform
            descriptors.append(descriptor)
        body = canonical({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors})
        await self.registry.manifests.put(repo, tag, body, OCI_INDEX, actor=actor)
        return Pushed(sha256(body), body, b"", [], OCI_INDEX)


@asynccontextmanager
async def hub_env(tmp_path: Path, **settings: Any) -> AsyncIterator[HubEnv]:
    if backend.is_scaleout():
        from tests.support.postgres import shared_cluster

        url = shared_cluster().create_database("hub", migrated=True)
    else:
        seed_sqlite(tmp_path / "hub.db")
        url = f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
    db = Database(url)
    store = FilesystemBlobStore(tmp_path / "storage", fsync=False)
    try:
        await upgrade(db)
        ctx = RegistryContext(db=db, store=store, settings=Settings(data_dir=tmp_path, **settings))
        yield HubEnv(ctx, Registry.build(ctx), RepositoryService(ctx), TagService(ctx), AuditLogService(ctx))
    finally:
        await store.close()
        await db.close()
