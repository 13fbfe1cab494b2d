"""Running one build (the ``builds.run`` job): resolve the commit, mint a short-lived registry token, hand the
executor a ``BuildSpec``, follow its stages and log, and record the outcome.

States: queued → cloning → building → pushing → signing → succeeded | failed | cancelled; each change is one
transaction with its ``build.*`` event (``records.change_state``). When the executor has pushed, the build enters
``signing`` and, in that transaction, its ``builds.attest`` job is queued with what the provenance needs
(``dockyard.builds.attestation``): that job runs where blob storage is (``dockyard serve``/``worker``, not a
builder), attaches the SBOM and provenance, signs the image and ends the build (``dockyard.provenance``). The
executor is the class the ``build_executor`` setting names (``module:Class``, constructed with the settings), loaded
the first time a build runs. Cancellation: a watcher reads ``cancel_requested`` every second and sets the executor's
``cancelled`` event (a build in ``signing`` has pushed: it is not cancelled). A runner that died mid-build leaves
the build in a running state; the job's next attempt starts it again from cloning.

The token grants push and pull on the repository and pull on the base images on this Dockyard that the commit's
Dockerfile builds ``FROM`` and the rule's previous build used, those the link's creator may pull
(``dockyard.builds.bases``); it lives as long as the build may (``build_wall_seconds`` plus a margin). Builders need no
storage credentials: the executor pushes through ``/v2`` with the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import posixpath
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Row

from dockyard.auth.scopes import ResourceScope
from dockyard.auth.secrets import SecretBox
from dockyard.auth.tokens import TokenService
from dockyard.authz.principal import Principal
from dockyard.builds import records
from dockyard.builds.attestation import AttestInputs, attest_inputs
from dockyard.builds.bases import fetch_dockerfile, parse_from, pullable, repository_of
from dockyard.builds.executor import (
    BuildExecutor,
    BuildFailed,
    BuildLimits,
    BuildResult,
    BuildSpec,
    RegistryTarget,
    SourceCheckout,
)
from dockyard.builds.git import GitAuth, GitError, ls_remote
from dockyard.builds.logs import LogWriter
from dockyard.builds.rules import GitRef
from dockyard.db.engine import Database
from dockyard.jobs.queue import enqueue
from dockyard.models import Build, BuildBase, BuildLink, BuildRule
from dockyard.settings import Settings

log = logging.getLogger("dockyard.builds")
CANCEL_POLL_SECONDS = 1.0
NAMESPACE_WAIT_SECONDS = 3.0  # a build waiting for a slot of its namespace looks again after this
EXECUTOR_GRACE_SECONDS = 120.0  # past build_wall_seconds, the pipeline gives up on an executor


def load_executor(settings: Settings) -> BuildExecutor:
    """The executor the ``build_executor`` setting names (``package.module:Class``), built with the settings."""
    target = settings.build_executor
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"build_executor must be 'module:Class', not {target!r}")
    module = importlib.import_module(module_name)
    factory = getattr(module, attribute)
    executor: BuildExecutor = factory(settings)
    return executor


def registry_url(settings: Settings) -> str:
    """Where builders reach this Dockyard's ``/v2``: ``build_registry_url``, else ``base_url``, else the listener."""
    if settings.build_registry_url:
        return settings.build_registry_url.rstrip("/")
    if settings.base_url:
        return settings.base_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


class Pipeline:
    """Runs builds in this process. One per job runner (``tasks.py``)."""

    def __init__(self, db: Database, settings: Settings, tokens: TokenService, box: SecretBox) -> None:
        self.db = db
        self.settings = settings
        self.tokens = tokens
        self.box = box
        self._executor: BuildExecutor | None = None

    def executor(self) -> BuildExecutor:
        if self._executor is None:
            self._executor = load_executor(self.settings)
        return self._executor

    async def _rows(self, build_id: int) -> tuple[Row[Any], Row[Any] | None, Row[Any] | None]:
        async with self.db.read() as conn:
            build = (await conn.execute(select(Build).where(Build.id == build_id))).first()
            if build is None:
                raise LookupError(build_id)
            rule = link = None
            if build.rule_id is not None:
                rule = (await conn.execute(select(BuildRule).where(BuildRule.id == build.rule_id))).first()
                if rule is not None:
                    link = (await conn.execute(select(BuildLink).where(BuildLink.id == rule.link_id))).first()
        return build, rule, link

    def _auth(self, link: Row[Any]) -> GitAuth:
        return GitAuth(
            https_username=link.https_username,
            https_token=self.box.open(link.https_token).decode() if link.https_token else None,
            ssh_private_key=self.box.open(link.ssh_private_key).decode() if link.ssh_private_key else None,
            ssh_known_hosts=link.ssh_known_hosts,
        )

    async def _finish(self, build_id: int, state: str, **values: Any) -> None:
        async with self.db.write() as conn:
            await records.change_state(conn, build_id, state, expect=records.RESTARTABLE_STATES, **values)

    async def run(self, build_id: int, attempt: int = 1) -> None:
        """Run build ``build_id`` to an end state. Idempotent: a finished or cancelled build is left alone."""
        try:
            build, rule, link = await self._rows(build_id)
        except LookupError:
            return
        restartable = records.RESTARTABLE_STATES if attempt > 1 else (records.QUEUED,)
        if build.state not in restartable:
            return
        if build.cancel_requested:
            await self._finish(build_id, records.CANCELLED, error="cancelled")
            return
        if rule is None or link is None:
            await self._finish(build_id, records.FAILED, error="its build rule or link was removed")
            return
        auth = self._auth(link)
        args = json.loads(rule.build_args)
        build_args = {a["name"]: (self.box.open(a["value"]).decode() if a["secret"] else a["value"]) for a in args}
        secret_args = frozenset(a["name"] for a in args if a["secret"])
        writer = LogWriter(
            self.db, build_id, [v for k, v in build_args.items() if k in secret_args] + [auth.https_token or ""]
        )
        await writer.start()
        try:
            await self._run(build, rule, link, auth, build_args, secret_args, writer)
        finally:
            await writer.close()

    async def _run(
        self,
        build: Row[Any],
        rule: Row[Any],
        link: Row[Any],
        auth: GitAuth,
        build_args: dict[str, str],
        secret_args: frozenset[str],
        writer: LogWriter,
    ) -> None:
        build_id = int(build.id)
        ref = GitRef("Tag" if build.source_type == "Tag" else "Branch", build.ref)
        commit = build.commit
        if commit is None:
            try:
                refs = await ls_remote(link.url, auth, ref.full)
            except GitError as exc:
                await writer.line(str(exc))
                await self._finish(build_id, records.FAILED, error=str(exc)[:1000])
                return
            commit = refs.get(ref.full + "^{}") or refs.get(ref.full)
            if commit is None:
                message = f"{ref.source_type.lower()} {ref.name!r} is not in the remote repository"
                await writer.line(message)
                await self._finish(build_id, records.FAILED, error=message)
                return
        async with self.db.write() as conn:
            limit = self.settings.build_namespace_concurrency
            if build.state == records.QUEUED and not await records.namespace_slot_free(
                conn, build_id, build.namespace, limit
            ):
                await records.postpone(conn, build, NAMESPACE_WAIT_SECONDS)
                return
            started = await records.change_state(
                conn,
                build_id,
                records.CLONING,
                expect=records.RESTARTABLE_STATES,
                commit=commit,
                error=None,
                digest=None,
            )
        if started is None:
            return  # cancelled meanwhile
        tags = tuple(json.loads(build.tags))
        spec = await self._spec(build, rule, link, auth, commit, ref, tags, build_args, secret_args)
        writer.secrets = sorted({*writer.secrets, spec.target.token}, key=len, reverse=True)
        await writer.line(f"build {build.uuid}: {ref.source_type.lower()} {ref.name} at {commit} -> {', '.join(tags)}")
        result = await self._execute(build_id, build.uuid, spec, writer)
        if result is not None:
            await writer.line(f"image pushed: {result.digest}; attaching its SBOM and provenance and signing it")
            await writer.flush()  # the attest job appends to this log: nothing more is written from here
            inputs = attest_inputs(build, rule, link, spec, result, self.settings.build_executor, started.started_at)
            await self._pushed(build_id, rule, ref, result, inputs)

    async def _execute(self, build_id: int, name: str, spec: BuildSpec, writer: LogWriter) -> BuildResult | None:
        """Run the executor, following its stages and the cancel requests; record a failure or cancellation and
        return None, or return what it pushed."""
        cancelled = asyncio.Event()
        watcher = asyncio.create_task(self._watch_cancel(build_id, cancelled))

        async def stage(stage_name: str) -> None:
            if stage_name in (records.BUILDING, records.PUSHING):
                async with self.db.write() as conn:
                    await records.change_state(
                        conn, build_id, stage_name, expect=(records.CLONING, records.BUILDING, records.PUSHING)
                    )

        state, reason = records.FAILED, ""
        try:
            # The executor enforces the wall limit; this is the pipeline's own backstop against one that hangs.
            async with asyncio.timeout(self.settings.build_wall_seconds + EXECUTOR_GRACE_SECONDS):
                return await self.executor().run(spec, writer.line, stage, cancelled)
        except TimeoutError:
            cancelled.set()
            reason = f"the executor ran past the time limit ({self.settings.build_wall_seconds:.0f} s)"
        except BuildFailed as exc:
            state = records.CANCELLED if cancelled.is_set() else records.FAILED
            reason = "cancelled" if cancelled.is_set() else f"{exc.stage}: {exc.reason}"
        except Exception as exc:
            log.exception("build %s: the executor failed", name)
            reason = f"the executor failed ({type(exc).__name__})"
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await writer.line(f"build {state}: {reason}")
        await writer.flush()
        await self._finish(build_id, state, error=reason[:1000])
        return None

    async def _pushed(
        self, build_id: int, rule: Row[Any], ref: GitRef, result: BuildResult, inputs: AttestInputs
    ) -> None:
        """The image is pushed: enter ``signing`` and queue the ``builds.attest`` job that ends the build; record
        the bases the build used (for base-image links)."""
        host = urlsplit(registry_url(self.settings)).netloc
        bases = {
            (repository, tag)
            for reference, _ in result.base_images
            if (found := repository_of(reference, host)) is not None
            for repository, tag in [found]
            if tag  # pinned by digest alone: a new push there changes nothing
        }
        async with self.db.write() as conn:
            done = await records.change_state(
                conn,
                build_id,
                records.SIGNING,
                expect=(records.PUSHING,),
                digest=result.digest,
                commit=result.commit,
            )
            if done is None:
                return
            key = f"{records.ATTEST}:{build_id}"
            await enqueue(conn, records.ATTEST, inputs.payload(), dedupe_key=key, max_attempts=5)
            await conn.execute(delete(BuildBase).where(BuildBase.rule_id == rule.id))
            if bases:
                await conn.execute(
                    insert(BuildBase),
                    [
                        {"rule_id": rule.id, "repository": repo, "tag": tag, "ref": ref.name, "commit": result.commit}
                        for repo, tag in sorted(bases)
                    ],
                )

    async def _watch_cancel(self, build_id: int, cancelled: asyncio.Event) -> None:
        while True:
            await asyncio.sleep(CANCEL_POLL_SECONDS)
            async with self.db.read() as conn:
                requested = (
                    await conn.execute(select(Build.cancel_requested).where(Build.id == build_id))
                ).scalar_one_or_none()
            if requested:
                cancelled.set()
                return

    async def _spec(
        self,
        build: Row[Any],
        rule: Row[Any],
        link: Row[Any],
        auth: GitAuth,
        commit: str,
        ref: GitRef,
        tags: tuple[str, ...],
        build_args: dict[str, str],
        secret_args: frozenset[str],
    ) -> BuildSpec:
        base_url = registry_url(self.settings)
        host = urlsplit(base_url).netloc
        async with self.db.read() as conn:
            recorded = (
                (await conn.execute(select(BuildBase.repository).where(BuildBase.rule_id == rule.id))).scalars().all()
            )
        context = rule.context.strip("/") or "."
        path = posixpath.normpath(posixpath.join(context, rule.dockerfile))
        facts = await fetch_dockerfile(link.url, auth, commit, ref.full, path)
        images = parse_from(facts.dockerfile or "", build_args)
        declared = {found[0] for image in images if (found := repository_of(image, host))}
        bases = await pullable(self.db, link.created_by, (set(recorded) | declared) - {build.repository})
        access = [ResourceScope("repository", build.repository, ("pull", "push"))]
        access += [ResourceScope("repository", name, ("pull",)) for name in sorted(bases)]
        wall = self.settings.build_wall_seconds
        token = await self.tokens.issue_registry(
            Principal("user", None, f"build:{build.uuid}"),
            self.settings.token_service or urlsplit(base_url).netloc,
            access,
            lifetime=int(min(wall + 600, 86400)),
        )
        return BuildSpec(
            build_id=build.uuid,
            source=SourceCheckout(
                url=link.url,
                commit=commit,
                ref=ref.full,
                https_token=auth.https_token,
                https_username=auth.https_username,
                ssh_private_key=auth.ssh_private_key,
                ssh_known_hosts=auth.ssh_known_hosts,
            ),
            target=RegistryTarget(
                base_url=base_url,
                repository=build.repository,
                tags=tags,
                token=token.token,
                tls_verify=base_url.startswith("https://"),
            ),
            dockerfile=rule.dockerfile,
            context=context,
            build_args=build_args,
            secret_build_args=secret_args,
            network=bool(rule.network),
            use_cache=bool(rule.build_cache),
            cache_key=build.repository,
            # SOURCE_DATE_EPOCH: the commit's time, so the same commit gives the same image (the executor falls back
            # to the time of its own checkout when the commit could not be fetched here).
            timestamp=facts.time,
            limits=BuildLimits(wall_seconds=wall),
        )
