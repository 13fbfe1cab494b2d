"""Managing automated builds of a repository: its source link and build rules, and starting and cancelling builds
by hand.

Who may (``authz.authorizer``, through ``repos.access.resolve``): admin on the repository links a remote, reads the
link and manages rules; write may start and cancel builds; read may list the builds and read their logs. A
repository the caller may not see is ``NotFound``; one it sees but may not act on, ``Denied``.

Secrets — the HTTPS token, the SSH deploy key's private half, the inbound webhook secret and secret build args —
are sealed with the server secret (``auth.secrets.SecretBox``, as webhook secrets are). The webhook secret and the
trigger token are shown once, when the link is made (the trigger token is stored as its SHA-256 only); nothing
sealed is ever shown again.
"""

from __future__ import annotations

import json
import re
import secrets
import uuid as uuidlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox, fingerprint
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.builds import git
from dockyard.builds.rules import GitRef, validate_rule
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.events.audit import record_audit
from dockyard.models import BuildLink, BuildRule
from dockyard.models.base import utcnow
from dockyard.repos.access import RepositoryRecord, resolve

MAX_RULES = 50
MAX_BUILD_ARGS = 50
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PATH = re.compile(r"^[^\x00-\x1f\x7f]{1,1024}$")


@dataclass(frozen=True, slots=True)
class LinkView:
    repository: str
    url: str
    auth: str  # none | https | ssh
    https_username: str | None
    has_https_token: bool
    ssh_public_key: str | None
    ssh_known_hosts: str | None
    poll_interval_seconds: int
    polled_at: datetime | None
    created_by: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LinkSecrets:
    """Shown once, when the link is made: the secret inbound push webhooks are signed with, and the token of the
    generic trigger URL."""

    webhook_secret: str
    trigger_token: str


@dataclass(frozen=True, slots=True)
class BuildArg:
    name: str
    value: str | None  # None for a secret one (never shown)
    secret: bool


@dataclass(frozen=True, slots=True)
class RuleView:
    id: str
    source_type: str
    source_name: str
    tag: str
    dockerfile: str
    build_context: str
    build_args: tuple[BuildArg, ...]
    autobuild: bool
    build_cache: bool
    also_latest: bool
    network: bool
    created_at: datetime


def link_view(row: Row[Any]) -> LinkView:
    return LinkView(
        repository=row.repository,
        url=row.url,
        auth=row.auth,
        https_username=row.https_username,
        has_https_token=row.https_token is not None,
        ssh_public_key=row.ssh_public_key,
        ssh_known_hosts=row.ssh_known_hosts,
        poll_interval_seconds=row.poll_interval_seconds,
        polled_at=row.polled_at,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def rule_view(row: Row[Any]) -> RuleView:
    args = tuple(
        BuildArg(a["name"], None if a.get("secret") else a.get("value", ""), bool(a.get("secret")))
        for a in json.loads(row.build_args)
    )
    return RuleView(
        id=row.uuid,
        source_type=row.source_type,
        source_name=row.source_name,
        tag=row.tag,
        dockerfile=row.dockerfile,
        build_context=row.context,
        build_args=args,
        autobuild=row.autobuild,
        build_cache=row.build_cache,
        also_latest=row.also_latest,
        network=row.network,
        created_at=row.created_at,
    )


def _clean_path(value: str, what: str) -> str:
    if not _PATH.match(value) or ".." in value.split("/"):
        raise Invalid("build_rule", f"{what} must be a path inside the repository (1 to 1024 characters, no '..')")
    return value


class BuildSettingsService:
    """Links and rules (``dockyard.builds.manage``)."""

    def __init__(self, db: Database, box: SecretBox) -> None:
        self.db = db
        self.box = box

    async def _repository(
        self, conn: AsyncConnection, actor: Principal, namespace: str, name: str, need: Level
    ) -> RepositoryRecord:
        record, _ = await resolve(conn, actor, namespace, name, need)
        return record

    @staticmethod
    async def _link_row(conn: AsyncConnection, repository: str) -> Row[Any]:
        row = (await conn.execute(select(BuildLink).where(BuildLink.repository == repository))).first()
        if row is None:
            raise NotFound("build_link", "the repository is not linked to a git repository", {"repository": repository})
        return row

    # -- the link ---------------------------------------------------------------------------------------------------

    async def link(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        *,
        url: str,
        https_username: str | None = None,
        https_token: str | None = None,
        ssh_known_hosts: str | None = None,
        poll_interval_seconds: int = 0,
        source_ip: str = "",
    ) -> tuple[LinkView, LinkSecrets]:
        """Link the repository to ``url`` (or re-link it: the rules stay, the credentials, webhook secret and trigger
        token are new). An SSH URL gets a new ed25519 deploy key, whose public half the view shows."""
        git.validate_git_url(url)
        if poll_interval_seconds != 0 and not 60 <= poll_interval_seconds <= 7 * 86400:
            raise Invalid("build_link", "poll_interval_seconds must be 0 (off) or 60 to 604800")
        ssh = git.is_ssh_url(url)
        if ssh and https_token:
            raise Invalid("build_link", "an SSH link uses its deploy key, not an HTTPS token")
        for field, value in (("https_username", https_username), ("https_token", https_token)):
            if value is not None and (len(value) > 4096 or any(ord(c) < 32 for c in value)):
                raise Invalid("build_link", f"{field} must be at most 4096 printable characters")
        if ssh_known_hosts is not None and len(ssh_known_hosts) > 16384:
            raise Invalid("build_link", "ssh_known_hosts must be at most 16384 characters")
        webhook_secret, trigger_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        private_key = public_key = None
        async with self.db.write() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            if ssh:
                private_key, public_key = git.new_deploy_key(f"dockyard-build:{record.name}")
            values = {
                "namespace": record.namespace,
                "url": url,
                "auth": "ssh" if ssh else ("https" if https_token else "none"),
                "https_username": https_username if https_token else None,
                "https_token": self.box.seal(https_token.encode()) if https_token else None,
                "ssh_private_key": self.box.seal(private_key.encode()) if private_key else None,
                "ssh_public_key": public_key,
                "ssh_known_hosts": ssh_known_hosts or None,
                "webhook_secret": self.box.seal(webhook_secret.encode()),
                "trigger_token": fingerprint(trigger_token),
                "poll_interval_seconds": poll_interval_seconds,
                "polled_refs": "{}",
                "polled_at": None,
                "updated_at": utcnow(),
            }
            existing = (
                await conn.execute(select(BuildLink.id).where(BuildLink.repository == record.name))
            ).scalar_one_or_none()
            if existing is None:
                await conn.execute(
                    insert(BuildLink).values(
                        repository=record.name, created_by=actor.audit_name, created_at=utcnow(), **values
                    )
                )
            else:
                await conn.execute(update(BuildLink).where(BuildLink.id == existing).values(**values))
            await record_audit(
                conn,
                record.namespace,
                "build.link.create",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"url": url, "auth": values["auth"]},
            )
            row = await self._link_row(conn, record.name)
        return link_view(row), LinkSecrets(webhook_secret, trigger_token)

    async def get_link(self, actor: Principal, namespace: str, name: str) -> LinkView:
        async with self.db.read() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            return link_view(await self._link_row(conn, record.name))

    async def unlink(self, actor: Principal, namespace: str, name: str, *, source_ip: str = "") -> None:
        """Remove the link and its rules (the build history stays)."""
        async with self.db.write() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            row = await self._link_row(conn, record.name)
            await conn.execute(delete(BuildRule).where(BuildRule.link_id == row.id))
            await conn.execute(delete(BuildLink).where(BuildLink.id == row.id))
            await record_audit(
                conn,
                record.namespace,
                "build.link.delete",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
            )

    # -- rules ------------------------------------------------------------------------------------------------------

    def _build_args(self, args: Sequence[dict[str, Any]]) -> str:
        if len(args) > MAX_BUILD_ARGS:
            raise Invalid("build_rule", f"at most {MAX_BUILD_ARGS} build args")
        stored, seen = [], set()
        for arg in args:
            arg_name, value, secret = str(arg.get("name", "")), str(arg.get("value", "")), bool(arg.get("secret"))
            if not _ARG_NAME.match(arg_name) or arg_name in seen:
                raise Invalid("build_rule", f"build arg names are unique identifiers: {arg_name[:100]!r}")
            if len(value) > 4096 or "\x00" in value:
                raise Invalid("build_rule", "a build arg's value is at most 4096 characters")
            seen.add(arg_name)
            stored.append(
                {"name": arg_name, "value": self.box.seal(value.encode()) if secret else value, "secret": secret}
            )
        return json.dumps(stored)

    async def add_rule(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        *,
        source_type: str = "Branch",
        source_name: str = "main",
        tag: str = "latest",
        dockerfile: str = "Dockerfile",
        build_context: str = "/",
        build_args: Sequence[dict[str, Any]] = (),
        autobuild: bool = True,
        build_cache: bool = True,
        also_latest: bool = False,
        network: bool = False,
        source_ip: str = "",
    ) -> RuleView:
        values = _rule_values(
            source_type, source_name, tag, dockerfile, build_context, autobuild, build_cache, also_latest, network
        )
        values["build_args"] = self._build_args(build_args)
        async with self.db.write() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            link = await self._link_row(conn, record.name)
            count = (
                await conn.execute(select(func.count()).select_from(BuildRule).where(BuildRule.link_id == link.id))
            ).scalar_one()
            if count >= MAX_RULES:
                raise Invalid("build_rule", f"at most {MAX_RULES} build rules per repository")
            rule_uuid = str(uuidlib.uuid4())
            await conn.execute(insert(BuildRule).values(uuid=rule_uuid, link_id=link.id, created_at=utcnow(), **values))
            await record_audit(
                conn,
                record.namespace,
                "build.rule.create",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"rule": rule_uuid, "source_type": source_type, "source_name": source_name, "tag": tag},
            )
            row = (await conn.execute(select(BuildRule).where(BuildRule.uuid == rule_uuid))).one()
        return rule_view(row)

    async def update_rule(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        rule_id: str,
        *,
        source_type: str = "Branch",
        source_name: str = "main",
        tag: str = "latest",
        dockerfile: str = "Dockerfile",
        build_context: str = "/",
        build_args: Sequence[dict[str, Any]] | None = None,
        autobuild: bool = True,
        build_cache: bool = True,
        also_latest: bool = False,
        network: bool = False,
        source_ip: str = "",
    ) -> RuleView:
        """Replace a rule's settings, keeping its id (``build_args`` None: the stored ones, secret values
        included, stay). Builds already queued keep what they were queued with."""
        values = _rule_values(
            source_type, source_name, tag, dockerfile, build_context, autobuild, build_cache, also_latest, network
        )
        if build_args is not None:
            values["build_args"] = self._build_args(build_args)
        async with self.db.write() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            link = await self._link_row(conn, record.name)
            changed = await conn.execute(
                update(BuildRule).where(BuildRule.link_id == link.id, BuildRule.uuid == rule_id).values(**values)
            )
            if changed.rowcount != 1:
                raise NotFound("build_rule", "build rule not found", {"id": rule_id[:64]})
            await record_audit(
                conn,
                record.namespace,
                "build.rule.update",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"rule": rule_id, "source_type": source_type, "source_name": source_name, "tag": tag},
            )
            row = (await conn.execute(select(BuildRule).where(BuildRule.uuid == rule_id))).one()
        return rule_view(row)

    async def list_rules(self, actor: Principal, namespace: str, name: str) -> list[RuleView]:
        """The rules, oldest first (write on the repository: they name its build args)."""
        async with self.db.read() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.WRITE)
            link = await self._link_row(conn, record.name)
            rows = (
                await conn.execute(select(BuildRule).where(BuildRule.link_id == link.id).order_by(BuildRule.id))
            ).all()
        return [rule_view(row) for row in rows]

    async def delete_rule(
        self, actor: Principal, namespace: str, name: str, rule_id: str, *, source_ip: str = ""
    ) -> None:
        async with self.db.write() as conn:
            record = await self._repository(conn, actor, namespace, name, Level.ADMIN)
            link = await self._link_row(conn, record.name)
            gone = await conn.execute(delete(BuildRule).where(BuildRule.link_id == link.id, BuildRule.uuid == rule_id))
            if gone.rowcount != 1:
                raise NotFound("build_rule", "build rule not found", {"id": rule_id[:64]})
            await record_audit(
                conn,
                record.namespace,
                "build.rule.delete",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"rule": rule_id},
            )

    async def is_linked(self, repository: str) -> bool:
        async with self.db.read() as conn:
            found = await conn.execute(select(BuildLink.id).where(BuildLink.repository == repository))
            return found.first() is not None


def git_ref(source_type: str, source_name: str) -> GitRef:
    """A ref named by a trigger; raises ``Invalid`` for an unknown type or an empty or unprintable name."""
    if source_type not in ("Branch", "Tag"):
        raise Invalid("build", "source_type must be Branch or Tag")
    if not source_name or len(source_name) > 255 or any(ord(c) < 33 for c in source_name):
        raise Invalid("build", "source_name must be a branch or tag name")
    return GitRef("Branch" if source_type == "Branch" else "Tag", source_name)


def _rule_values(
    source_type: str,
    source_name: str,
    tag: str,
    dockerfile: str,
    build_context: str,
    autobuild: bool,
    build_cache: bool,
    also_latest: bool,
    network: bool,
) -> dict[str, Any]:
    """A rule's columns but its build args, checked (``validate_rule``, clean paths): what adding and changing a
    rule both store."""
    validate_rule(source_type, source_name, tag)
    return {
        "source_type": source_type,
        "source_name": source_name,
        "tag": tag,
        "dockerfile": _clean_path(dockerfile, "dockerfile"),
        "context": _clean_path(build_context, "build_context"),
        "autobuild": autobuild,
        "build_cache": build_cache,
        "also_latest": also_latest,
        "network": network,
    }
