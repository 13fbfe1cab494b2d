"""Starting builds — inbound push webhooks, the generic trigger URL, "build now", base-image pushes — and the
build history: list, read, cancel.

A push (webhook or poll) builds with the rules that have ``autobuild`` on; "build now" and the trigger URL build
with any rule that matches. A head commit whose message has ``[skip build]`` or ``[ci skip]`` is not built. A
trigger that names no ref (``{"build": true}``, or "build now" without a ref) lists the remote's refs in a job
(``builds.poll`` with ``all``), so no request waits on git. Every build is queued through
``records.queue_build`` (coalescing per rule and ref).

Who may: anyone holding the link's webhook secret (a signed push) or trigger token (the trigger URL); write on the
repository for "build now" and cancel; read for the history. An inbound webhook or trigger for a repository that
does not exist, is not linked, or with a wrong or missing signature is the same ``Unauthorized`` — nothing is
queued and nothing tells a private repository from a missing one.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.auth.secrets import SecretBox, fingerprint
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.builds import records, triggers
from dockyard.builds.manage import git_ref
from dockyard.builds.records import BuildView, Queued
from dockyard.builds.rules import GitRef, Rule, skips_build, tags_for
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound, Unauthorized
from dockyard.events.audit import record_audit
from dockyard.jobs.queue import enqueue
from dockyard.models import Build, BuildBase, BuildLink, BuildRule
from dockyard.repos.access import candidate_names, find_record, resolve

_ID_PREFIX = re.compile(r"[0-9a-f-]{4,36}")  # build ids are UUIDs: a prefix needs no LIKE escaping

POLL = "builds.poll"


def _refused() -> Unauthorized:
    return Unauthorized("trigger", "the signature, token or repository of this trigger is not valid")


def rule_of(row: Row[Any]) -> Rule:
    return Rule(row.source_type, row.source_name, row.tag, row.also_latest)


async def queue_for_ref(
    conn: AsyncConnection,
    link: Row[Any],
    ref: GitRef,
    commit: str | None,
    *,
    trigger: str,
    actor: str,
    autobuild_only: bool,
    rule_uuid: str | None = None,
) -> list[Queued]:
    """Queue a build of ``ref`` for every rule of ``link`` that builds it."""
    query = select(BuildRule).where(BuildRule.link_id == link.id).order_by(BuildRule.id)
    if rule_uuid is not None:
        query = query.where(BuildRule.uuid == rule_uuid)
    out = []
    for rule in (await conn.execute(query)).all():
        if autobuild_only and not rule.autobuild:
            continue
        tags = tags_for(rule_of(rule), ref)
        if not tags:
            continue
        out.append(
            await records.queue_build(
                conn,
                repository=link.repository,
                namespace=link.namespace,
                rule_id=rule.id,
                dockerfile=rule.dockerfile,
                context=rule.context,
                ref=ref,
                commit=commit,
                tags=tags,
                trigger=trigger,
                actor=actor,
            )
        )
    return out


async def enqueue_listing(conn: AsyncConnection, link_id: int, *, trigger: str, actor: str, rule: str | None) -> None:
    """Have a job list the remote's refs and build every ref some rule matches (not only the moved ones)."""
    await enqueue(
        conn, POLL, {"link": link_id, "all": True, "trigger": trigger, "actor": actor, "rule": rule}, max_attempts=3
    )


# The rules last built FROM a repository's tags (built once: every pushed image asks).
_DEPENDENTS = (
    select(
        BuildBase.rule_id,
        BuildBase.ref,
        BuildBase.commit,
        BuildRule.uuid,
        BuildRule.source_type,
        BuildRule.autobuild,
        BuildRule.link_id,
        BuildLink.repository.label("target"),
    )
    .join(BuildRule, BuildRule.id == BuildBase.rule_id)
    .join(BuildLink, BuildLink.id == BuildRule.link_id)
    .where(BuildBase.repository == bindparam("repository"), BuildBase.tag.in_(bindparam("tags", expanding=True)))
    .order_by(BuildBase.rule_id)
)


async def queue_dependents(conn: AsyncConnection, repository: str, tags: Sequence[str]) -> list[Queued]:
    """A new image was pushed to ``repository`` under ``tags``: queue every rule last built ``FROM`` one of them
    (base-image links), at the ref and commit it last built. A repository's own rules are not its dependents."""
    if not tags:
        return []
    rows = (await conn.execute(_DEPENDENTS, {"repository": repository, "tags": list(tags)})).all()
    out: list[Queued] = []
    seen: set[int] = set()
    for row in rows:
        if row.target == repository or row.rule_id in seen or not row.autobuild:
            continue
        seen.add(row.rule_id)
        link = (await conn.execute(select(BuildLink).where(BuildLink.id == row.link_id))).one()
        ref = git_ref(row.source_type, row.ref)
        out += await queue_for_ref(
            conn, link, ref, row.commit, trigger="base-image", actor="", autobuild_only=True, rule_uuid=row.uuid
        )
    return out


class BuildService:
    """Triggers and history (``dockyard.builds.service``). ``wake`` is called after a commit that queued jobs."""

    def __init__(self, db: Database, box: SecretBox, wake: Callable[[], None] | None = None) -> None:
        self.db = db
        self.box = box
        self.wake = wake or (lambda: None)

    async def _linked(self, conn: AsyncConnection, namespace: str, name: str) -> Row[Any] | None:
        names = candidate_names(namespace, name)
        return (await conn.execute(select(BuildLink).where(BuildLink.repository.in_(names)))).first()

    # -- inbound triggers (no principal) ---------------------------------------------------------------------------

    async def on_push(self, namespace: str, name: str, headers: Mapping[str, str], body: bytes) -> list[Queued]:
        """A push webhook from a git host. Raises ``Unauthorized`` (nothing queued) unless the repository is linked
        and the signature is right; ``Invalid`` for a signed body that is not a push payload."""
        provider = triggers.provider_of(headers)
        async with self.db.read() as conn:
            link = await self._linked(conn, namespace, name)
        if provider is None or link is None:
            raise _refused()
        secret = self.box.open(link.webhook_secret).decode()
        if not triggers.verify(provider, headers, body, secret):
            raise _refused()
        if not triggers.is_push(provider, headers):
            return []
        try:
            pushed = triggers.parse_push(provider, body)
        except ValueError as exc:
            raise Invalid("trigger", f"not a {provider} push payload: {exc}") from exc
        queued: list[Queued] = []
        async with self.db.write() as conn:
            link = await self._linked(conn, namespace, name)
            if link is None:
                raise _refused()
            for ref in pushed:
                if skips_build(ref.message):
                    continue
                queued += await queue_for_ref(
                    conn, link, ref.ref, ref.commit, trigger=f"webhook:{provider}", actor="", autobuild_only=True
                )
        self.wake()
        return queued

    async def on_trigger(self, namespace: str, name: str, token: str, body: Mapping[str, Any]) -> list[Queued]:
        """Docker Hub's trigger URL: ``{"source_type": "Branch", "source_name": "main"}`` builds that ref with every
        matching rule; ``{"build": true}`` (or an empty body) every ref every rule matches (listed in a job)."""
        async with self.db.write() as conn:
            link = await self._linked(conn, namespace, name)
            if link is None or not _same(link.trigger_token, fingerprint(token)):
                raise _refused()
            name_given = body.get("source_name")
            if name_given:
                ref = git_ref(str(body.get("source_type") or "Branch"), str(name_given))
                queued = await queue_for_ref(conn, link, ref, None, trigger="trigger", actor="", autobuild_only=False)
            else:
                await enqueue_listing(conn, link.id, trigger="trigger", actor="", rule=None)
                queued = []
        self.wake()
        return queued

    # -- by hand --------------------------------------------------------------------------------------------------

    async def run(
        self,
        actor: Principal,
        namespace: str,
        name: str,
        *,
        source_type: str | None = None,
        source_name: str | None = None,
        rule: str | None = None,
        source_ip: str = "",
    ) -> list[Queued]:
        """Build now (write). With a ref: that ref with every matching rule (or ``rule``); without one: every ref
        the rules match, listed by a job (the answer is then empty)."""
        async with self.db.write() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.WRITE)
            link = (await conn.execute(select(BuildLink).where(BuildLink.repository == record.name))).first()
            if link is None:
                raise NotFound("build_link", "the repository is not linked to a git repository")
            if rule is not None:
                found = await conn.execute(
                    select(BuildRule.id).where(BuildRule.link_id == link.id, BuildRule.uuid == rule)
                )
                if found.first() is None:
                    raise NotFound("build_rule", "build rule not found", {"id": rule[:64]})
            if source_name:
                ref = git_ref(source_type or "Branch", source_name)
                queued = await queue_for_ref(
                    conn, link, ref, None, trigger="api", actor=actor.audit_name, autobuild_only=False, rule_uuid=rule
                )
                if not queued:
                    raise Invalid("build", f"no build rule builds {ref.source_type.lower()} {ref.name!r}")
            else:
                await enqueue_listing(conn, link.id, trigger="api", actor=actor.audit_name, rule=rule)
                queued = []
            await record_audit(
                conn,
                record.namespace,
                "build.run",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"ref": source_name, "builds": [q.build for q in queued]},
            )
        self.wake()
        return queued

    async def cancel(
        self, actor: Principal, namespace: str, name: str, build_id: str, *, source_ip: str = ""
    ) -> BuildView:
        """Cancel a build (write): a queued one at once, a running one within seconds (its runner sees the request).
        A finished build is left as it is."""
        async with self.db.write() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.WRITE)
            row = await self._build(conn, record.name, build_id)
            if row.state == records.QUEUED:
                await records.change_state(
                    conn, row.id, records.CANCELLED, expect=(records.QUEUED,), error="cancelled", cancel_requested=True
                )
            elif row.state in records.RUNNING_STATES:
                await conn.execute(update(Build).where(Build.id == row.id).values(cancel_requested=True))
            await record_audit(
                conn,
                record.namespace,
                "build.cancel",
                actor=actor.audit_name,
                target=record.name,
                source_ip=source_ip,
                data={"build": build_id},
            )
            return await records.view_of(conn, await self._build(conn, record.name, build_id))

    # -- history ----------------------------------------------------------------------------------------------------

    @staticmethod
    async def _build(conn: AsyncConnection, repository: str, build_id: str) -> Row[Any]:
        row = (await conn.execute(select(Build).where(Build.uuid == build_id, Build.repository == repository))).first()
        if row is None:
            raise NotFound("build", "build not found", {"id": build_id[:64]})
        return row

    async def list(self, actor: Principal, namespace: str, name: str, page: PageRequest) -> Page[BuildView]:
        """The repository's builds, newest first (read)."""
        async with self.db.read(consistent=True) as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.READ)
            count = (
                await conn.execute(select(func.count()).select_from(Build).where(Build.repository == record.name))
            ).scalar_one()
            rows = (
                await conn.execute(
                    select(Build)
                    .where(Build.repository == record.name)
                    .order_by(Build.id.desc())
                    .limit(page.page_size)
                    .offset(page.offset)
                )
            ).all()
            return Page([await records.view_of(conn, row) for row in rows], count, page)

    async def get(self, actor: Principal, namespace: str, name: str, build_id: str) -> tuple[int, BuildView]:
        """(row id, view) of one build (read)."""
        async with self.db.read() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.READ)
            row = await self._build(conn, record.name, build_id)
            return int(row.id), await records.view_of(conn, row)

    async def badge_state(self, actor: Principal, namespace: str, name: str, tag: str | None) -> str | None:
        """The state of the latest build of the repository (that pushes ``tag``, when given) for the status badge,
        or None when there is none. Read on the repository (a hidden one is ``NotFound``)."""
        async with self.db.read() as conn:
            record, _ = await resolve(conn, actor, namespace, name, Level.READ)
            rows = (
                await conn.execute(
                    select(Build.state, Build.tags)
                    .where(Build.repository == record.name)
                    .order_by(Build.id.desc())
                    .limit(200)
                )
            ).all()
        for row in rows:
            if tag is None or tag in json.loads(row.tags):
                return str(row.state)
        return None

    async def resolve_id(self, prefix: str) -> str:
        """The build id that ``prefix`` (at least 4 characters of it) starts, for the operator's commands, where ids
        are typed by hand. Raises ``NotFound("build")`` for none and ``Invalid("build")`` for several."""
        prefix = prefix.strip().lower()
        if not _ID_PREFIX.fullmatch(prefix):
            raise NotFound("build", "build not found", {"id": prefix[:64]})
        async with self.db.read() as conn:
            found = (await conn.execute(select(Build.uuid).where(Build.uuid.like(f"{prefix}%")).limit(2))).all()
        if not found:
            raise NotFound("build", "build not found", {"id": prefix})
        if len(found) > 1:
            raise Invalid("build", "several builds have ids starting so: give more of it", {"id": prefix})
        return str(found[0].uuid)

    async def locate(self, build_id: str) -> tuple[str, str]:
        """(namespace, Hub name) of the repository of build ``build_id`` (for the CLI, which names a build alone);
        ``NotFound`` when there is none. Callers then authorize through ``get``."""
        async with self.db.read() as conn:
            row = (await conn.execute(select(Build.namespace, Build.repository).where(Build.uuid == build_id))).first()
        if row is None:
            raise NotFound("build", "build not found", {"id": build_id[:64]})
        prefix = f"{row.namespace}/"
        name = row.repository[len(prefix) :] if row.repository.startswith(prefix) else row.repository
        return str(row.namespace), name

    async def is_automated(self, namespace: str, name: str) -> bool:
        async with self.db.read() as conn:
            record = await find_record(conn, namespace, name)
            if record is None:
                return False
            found = await conn.execute(select(BuildLink.id).where(BuildLink.repository == record.name))
            return found.first() is not None


def _same(stored: str, candidate: str) -> bool:
    return hmac.compare_digest(stored.encode(), candidate.encode())
