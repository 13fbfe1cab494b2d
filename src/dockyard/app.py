"""Composition root: ``create_app(settings)`` wires DB, storage and services and mounts every surface;
``background_work`` starts what runs behind them (the job runner with its periodic jobs, and the event bus with
its subscribers) in ``dockyard serve`` and ``dockyard worker`` alike.

Nothing imports this module except the CLI and the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp, Receive, Scope, Send

from dockyard.accounts.access_tokens import AccessTokenService
from dockyard.accounts.collaborators import CollaboratorService
from dockyard.accounts.invites import InviteService
from dockyard.accounts.oidc_users import OidcAccounts
from dockyard.accounts.org_tokens import OrgTokenService
from dockyard.accounts.orgs import OrgService
from dockyard.accounts.robots import RobotService
from dockyard.accounts.scim_tokens import ScimTokenService
from dockyard.accounts.scim_users import ScimUserService
from dockyard.accounts.teams import TeamService
from dockyard.accounts.two_factor import TwoFactorService
from dockyard.accounts.users import UserService
from dockyard.analysis.tasks import AnalysisSubscriber
from dockyard.auth.credentials import Authenticator
from dockyard.auth.refresh import RefreshTokens
from dockyard.auth.secrets import SecretBox, configure_password_hashing_from
from dockyard.auth.tokens import TokenService
from dockyard.auth.web_sessions import WebSessions
from dockyard.builds.manage import BuildSettingsService
from dockyard.builds.reaper import reap_orphaned_builds
from dockyard.builds.service import BuildService
from dockyard.builds.tasks import BuildSubscriber, enqueue_due_polls
from dockyard.db.engine import Database
from dockyard.events.bus import OutboxDispatcher, Subscriber, prune_dispatched
from dockyard.http import ops
from dockyard.http.lazy import LazyApp
from dockyard.http.limits import blob_or_manifest_write
from dockyard.http.metrics import Metrics
from dockyard.http.middleware import Front
from dockyard.http.oci.auth import RegistryGuard
from dockyard.http.oci.errors import OCIError
from dockyard.http.oci.errors import render as render_oci_error
from dockyard.http.oci.routes import failure_response, oci_app
from dockyard.http.proxies import TrustedProxies, resolve_client
from dockyard.inventory.tasks import inventory_service
from dockyard.jobs.periodic import PeriodicJob
from dockyard.jobs.registry import running_jobs
from dockyard.jobs.runner import JobRunner, OutcomeObserver
from dockyard.layers.service import ImageFiles
from dockyard.logs import configure_logging
from dockyard.models.base import utcnow
from dockyard.proxy.cache import ProxyCache
from dockyard.proxy.flights import BlobFlights
from dockyard.proxy.manage import ProxyDirectory, ProxyService
from dockyard.proxy.mirror import MirrorRouter
from dockyard.proxy.policy import TagChecks
from dockyard.proxy.upstream import UpstreamClient
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.registry.gc import GarbageCollector, GCReport
from dockyard.registry.gc_runs import SCHEDULE, record_gc_run
from dockyard.registry.services import Registry
from dockyard.registry.uploads import expire_idle_uploads
from dockyard.replication.rules import ReplicationService
from dockyard.replication.tasks import ReplicationSubscriber, enqueue_due_runs
from dockyard.repos.audit import AuditLogService
from dockyard.repos.immutability import ImmutabilityService
from dockyard.repos.pulls import PullRecorder
from dockyard.repos.quotas import QuotaService
from dockyard.repos.ratelimits import PullRateLimiter
from dockyard.repos.repositories import RepositoryService
from dockyard.repos.retention import RetentionService
from dockyard.repos.site_admin import SiteAdminService
from dockyard.repos.tags import TagService
from dockyard.settings import Settings, load_serialized, multiprocess_metrics_dir, supervisor_pid
from dockyard.startup import first_start as first_start
from dockyard.startup import key_ring as key_ring
from dockyard.startup import prepare_data_dir as prepare_data_dir
from dockyard.startup import resolve_secret_key as resolve_secret_key
from dockyard.storage.base import BlobStore
from dockyard.storage.factory import open_blob_store
from dockyard.storage.observed import ObservedBlobStore
from dockyard.trust.checker import TrustChecker
from dockyard.trust.reverify import SignatureSubscriber
from dockyard.vulns.gate import VulnerabilityGate
from dockyard.vulns.manage import VulnSettingsService
from dockyard.vulns.reports import VulnerabilityReports
from dockyard.vulns.scanner import Scanner, ScanObserver
from dockyard.vulns.tasks import inventory_source, sync_sources
from dockyard.vulns.vexrefs import ReferrerVex
from dockyard.webhooks.dispatch import WebhookSubscriber
from dockyard.webhooks.manage import WebhookService

if TYPE_CHECKING:
    from dockyard.auth.oidc import OidcClient
    from dockyard.trust.manage import TrustService

log = logging.getLogger("dockyard")


def oidc_client(db: Database, settings: Settings) -> OidcClient | None:
    """The single sign-on client when an OpenID provider is configured (its libraries load only then), else None."""
    if not settings.oidc_enabled:
        return None
    from dockyard.auth.oidc import OidcClient

    return OidcClient(db, settings, SecretBox(settings.secret_key))


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def event_subscribers(db: Database, store: BlobStore, settings: Settings) -> list[Subscriber[Any]]:
    """The event bus's subscribers, in the order each event is handed to them (``dockyard.events.bus``)."""
    subscribers: list[Subscriber[Any]] = [
        SignatureSubscriber(),  # a pushed signature: verify the image it signs (trust.verify)
        WebhookSubscriber(
            db, BlobService(RegistryContext(db=db, store=store, settings=settings)), settings
        ),  # deliveries and their webhooks.deliver jobs
    ]
    subscribers.append(AnalysisSubscriber())  # a pushed image: index, inventory and SBOM, scan (analysis.image)
    subscribers.append(BuildSubscriber())  # a pushed base image: queue the builds built FROM it (builds.run)
    subscribers.append(ReplicationSubscriber(db, settings))  # push rules on events: their runs (replication.run)
    return subscribers


def periodic_jobs(
    db: Database,
    store: BlobStore,
    settings: Settings,
    *,
    on_gc: Callable[[GCReport], None] | None = None,
    vulns_observer: ScanObserver | None = None,
) -> list[PeriodicJob]:
    """The periodic jobs the job runner runs besides its own (each on one replica at a time): the outbox's
    retention, the expiry of idle upload sessions (a few times per ``upload_expiry_seconds``, whether or not
    scheduled collections are on), unless ``gc_interval_seconds`` is 0, garbage collection (``on_gc`` sees
    each report) and, when ``vulndb_sources`` lists any, the sync of vulnerability data (``vulndb.sync``)."""
    retention = timedelta(seconds=settings.events_retention_seconds)
    ctx = RegistryContext(db=db, store=store, settings=settings)

    async def prune_events() -> None:
        await prune_dispatched(db, retention)

    async def expire_uploads() -> None:
        await expire_idle_uploads(ctx)

    async def poll_links() -> None:
        await enqueue_due_polls(db)

    async def reap_builds() -> None:
        await reap_orphaned_builds(db)

    async def schedule_replication() -> None:
        await enqueue_due_runs(db, settings)

    expiry_check = timedelta(seconds=min(max(settings.upload_expiry_seconds / 4, 0.5), 3600))
    jobs = [
        PeriodicJob("events.retention", timedelta(hours=1), prune_events, ttl=timedelta(minutes=15), at_start=True),
        PeriodicJob("uploads.expire", expiry_check, expire_uploads, ttl=timedelta(minutes=10)),
        # git remotes that cannot call in: builds.poll for each link whose polling interval has passed
        PeriodicJob(
            "builds.poll", timedelta(seconds=settings.build_poll_check_seconds), poll_links, ttl=timedelta(minutes=5)
        ),
        # builds whose last job ended without ending them (a runner that died in its last attempt)
        PeriodicJob("builds.reap", timedelta(minutes=1), reap_builds, ttl=timedelta(minutes=5), at_start=True),
        # scheduled replication rules whose interval has passed: their runs (replication.run)
        PeriodicJob(
            "replication.schedule",
            timedelta(seconds=settings.replication_schedule_check_seconds),
            schedule_replication,
            ttl=timedelta(minutes=5),
        ),
    ]
    if settings.gc_interval_seconds:
        gc = GarbageCollector(ctx)

        async def collect() -> None:
            started = utcnow()
            report = await gc.run()
            await record_gc_run(db, report, started_at=started, trigger=SCHEDULE)
            if on_gc is not None:
                on_gc(report)

        jobs.append(PeriodicJob("gc", timedelta(seconds=settings.gc_interval_seconds), collect, ttl=timedelta(hours=1)))
    if settings.retention_interval_seconds:
        retention_runs = RetentionService(ctx)

        async def apply_retention() -> None:
            await retention_runs.run_scheduled()

        every_retention = timedelta(seconds=settings.retention_interval_seconds)
        jobs.append(PeriodicJob("retention", every_retention, apply_retention, ttl=timedelta(hours=2)))
    if settings.vulndb_sources and not settings.vulndb_air_gapped:
        scanner = Scanner(db, inventory_source(settings, db, ctx), vulns_observer)

        async def sync() -> None:
            await sync_sources(db, settings, scanner, observer=vulns_observer)

        every = timedelta(seconds=settings.vulndb_sync_interval_seconds)
        jobs.append(PeriodicJob("vulndb.sync", every, sync, ttl=timedelta(hours=2), at_start=True))
    return jobs


@asynccontextmanager
async def background_work(
    db: Database,
    store: BlobStore,
    settings: Settings,
    *,
    stop_grace: float = 30.0,
    on_gc: Callable[[GCReport], None] | None = None,
    vulns_observer: ScanObserver | None = None,
    on_job_finished: OutcomeObserver | None = None,
) -> AsyncIterator[JobRunner]:
    """Run the job runner (every handler of ``dockyard.jobs.registry``, and ``periodic_jobs``) and the event bus
    (``event_subscribers``; it wakes the runner after dispatching) until the context exits. Yields the runner."""
    periodic = periodic_jobs(db, store, settings, on_gc=on_gc, vulns_observer=vulns_observer)
    async with running_jobs(
        db, store, settings, stop_grace=stop_grace, periodic=periodic, on_finished=on_job_finished
    ) as runner:
        bus = OutboxDispatcher(
            db,
            event_subscribers(db, store, settings),
            poll_seconds=settings.webhook_dispatch_poll_seconds,
            wake=runner.wake,
        )
        task = asyncio.create_task(bus.run(), name="events.dispatch")
        try:
            yield runner
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def create_app(settings: Settings) -> DockyardApp:
    metrics = Metrics(multiprocess_dir=multiprocess_metrics_dir())
    settings = resolve_secret_key(settings)
    configure_password_hashing_from(settings)
    # The Hub API (FastAPI, its pydantic models and routes: ~15 MiB and half a second per worker) and the web hub
    # (jinja2 and its templates: ~0.4 s) are built on their first request; a worker that serves only /v2 never
    # loads them.
    api, web = LazyApp(), LazyApp()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = Database(
            settings.effective_database_url,
            pool_size=settings.db_pool_size,
            sqlite_synchronous=settings.sqlite_synchronous.upper(),
        )
        db.observe_statements(metrics.statement_executed)
        store = ObservedBlobStore(
            open_blob_store(settings.effective_storage_url, fsync=settings.fsync), metrics.storage_operation
        )
        ctx = RegistryContext(db=db, store=store, settings=settings)
        registry = Registry.build(ctx)
        app.state.registry = registry
        checker = TrustChecker(ctx)
        app.state.trust = checker  # manifest GETs ask it whether the trust policy lets the image out
        # OpenVEX attached to images, for pull decisions and reports (vex_referrers)
        attached_vex = ReferrerVex(registry.blobs) if settings.vex_referrers else None
        gate = VulnerabilityGate(db, attached_vex)
        app.state.vulns = gate  # …and whether the vulnerability policy does (http/oci/policies.py asks both)
        scanner = Scanner(db, inventory_source(settings, db, ctx), metrics)
        pulls = PullRecorder(ctx)
        app.state.pulls = pulls  # manifest GETs count pulls here; flushed to the DB in the background
        # Pull rate limits (off unless configured): decided in memory, counts shared through the DB every ~1 s.
        limiter = PullRateLimiter(db, settings) if PullRateLimiter.enabled(settings) else None
        app.state.ratelimits = limiter
        keys = key_ring(settings, db)  # loaded on the first token signed or verified (first_start created one)
        # LDAP, when configured, checks the passwords of the accounts it owns (dockyard.accounts.ldap_sign_in)
        directory = None
        if settings.ldap_enabled:  # ldap3 is loaded only then (a few MiB per worker)
            from dockyard.accounts.ldap_sign_in import LdapSignIn

            directory = LdapSignIn(db, settings)
        authenticator = Authenticator(db, settings, metrics, directory)
        tokens = TokenService(keys, settings)
        refresh = RefreshTokens(db, tokens, authenticator, settings)
        app.state.guard = RegistryGuard(settings, registry.access, authenticator, tokens, refresh)
        users, orgs, teams = (
            UserService(db, settings, store),
            OrgService(db, settings, store),
            TeamService(db, settings),
        )
        repositories, tags = RepositoryService(ctx), TagService(ctx)
        files = ImageFiles(ctx)  # one per process: its indexer coalesces index builds for the API and the pages
        inventory = inventory_service(ctx, files.indexer)
        collaborators = CollaboratorService(db, settings)
        reports = VulnerabilityReports(db, scanner, attached_vex)
        access_tokens = AccessTokenService(db, settings)
        two_factor = TwoFactorService(db, authenticator.second_factor)
        webhooks = WebhookService(db, SecretBox(settings.secret_key))
        upstreams = UpstreamClient(settings.proxy_upstream_timeout_seconds)
        app.state.proxy = ProxyCache(  # pulls of a proxy namespace's repositories (dockyard.proxy)
            registry,
            ProxyDirectory(db, SecretBox(settings.secret_key)),
            upstreams,
            BlobFlights(db, registry.uploads, upstreams, settings.proxy_fetch_lease_seconds),
            TagChecks(db),
        )
        app.state.mirror = MirrorRouter(db, settings.mirror_namespace)  # docker.io names → the mirror's namespace
        proxies = ProxyService(db, SecretBox(settings.secret_key))

        runners: list[JobRunner] = []  # this process's job runner, once started: woken after a build is queued

        def wake_jobs() -> None:
            for runner in runners:
                runner.wake()

        builds = BuildService(db, SecretBox(settings.secret_key), wake_jobs)
        invites = InviteService(db, settings, wake_jobs)  # e-mail goes out from a job
        build_settings = BuildSettingsService(db, SecretBox(settings.secret_key))

        # One of each for the Hub API and the web pages.
        robots, audit_log = RobotService(db, settings), AuditLogService(ctx)
        quota_service, retention_service = QuotaService(db), RetentionService(ctx)
        immutability = ImmutabilityService(ctx)

        def trust_service() -> TrustService:
            # Trusted keys and managed signing keys: cryptography, loaded with the Hub API or the web hub.
            from dockyard.trust.manage import TrustService

            return TrustService(db, SecretBox(settings.secret_key))

        replication = ReplicationService(db, SecretBox(settings.secret_key), settings, wake_jobs)

        def hub_api() -> ASGIApp:
            from dockyard.http.api.app import served_api
            from dockyard.http.api.deps import ApiServices

            return served_api(
                ApiServices(
                    settings,
                    registry,
                    authenticator,
                    tokens,
                    users=users,
                    orgs=orgs,
                    teams=teams,
                    collaborators=collaborators,
                    robots=robots,
                    org_tokens=OrgTokenService(db, settings),
                    scim_tokens=ScimTokenService(db),
                    scim_users=ScimUserService(db, settings, store),
                    invites=invites,
                    access_tokens=access_tokens,
                    webhooks=webhooks,
                    trust=trust_service(),
                    checker=checker,
                    repositories=repositories,
                    tags=tags,
                    audit=audit_log,
                    pulls=pulls,
                    files=files,
                    inventory=inventory,
                    proxies=proxies,
                    vulns=VulnSettingsService(db),
                    gate=gate,
                    reports=reports,
                    quotas=quota_service,
                    retention=retention_service,
                    immutability=immutability,
                    builds=builds,
                    build_settings=build_settings,
                    blobs=BlobService(ctx),
                    two_factor=two_factor,
                    replication=replication,
                )
            )

        api.build_with(hub_api)

        def web_hub() -> ASGIApp:
            from dockyard.http.web.app import web_app
            from dockyard.http.web.services import WebServices

            return web_app(
                WebServices(
                    settings,
                    registry,
                    WebSessions(db, settings, authenticator),
                    users=users,
                    orgs=orgs,
                    teams=teams,
                    repositories=repositories,
                    tags=tags,
                    checker=checker,
                    files=files,
                    access_tokens=access_tokens,
                    webhooks=webhooks,
                    collaborators=collaborators,
                    inventory=inventory,
                    reports=reports,
                    builds=builds,
                    robots=robots,
                    audit=audit_log,
                    quotas=quota_service,
                    retention=retention_service,
                    immutability=immutability,
                    ratelimits=limiter,
                    two_factor=two_factor,
                    invites=invites,
                    oidc_accounts=OidcAccounts(db, settings, SecretBox(settings.secret_key)),
                    oidc=oidc_client(db, settings),
                    trust=trust_service(),
                    proxies=proxies,
                    replication=replication,
                    build_settings=build_settings,
                    site_admin=SiteAdminService(db, wake_jobs),
                )
            )

        web.build_with(web_hub)
        background: list[asyncio.Task[None]] = [asyncio.create_task(pulls.run())]
        if limiter is not None:
            background.append(asyncio.create_task(limiter.run()))
        jobs = AsyncExitStack()
        try:
            if settings.jobs_enabled:
                # Background jobs (webhook deliveries, trust verification, GC, retention) and the event bus: every
                # server process runs them; `dockyard worker` runs more without HTTP.
                runners.append(
                    await jobs.enter_async_context(
                        background_work(
                            db,
                            store,
                            settings,
                            stop_grace=settings.jobs_stop_grace_seconds,
                            on_gc=metrics.record_gc,
                            vulns_observer=metrics,
                            on_job_finished=metrics.job_finished,
                        )
                    )
                )
            yield
        finally:
            await jobs.aclose()
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await pulls.flush()  # run() flushes when cancelled; this catches anything counted since
            await upstreams.aclose()
            await store.close()
            await db.close()

    # The web hub answers every path the other surfaces do not (`/`, `/r/…`, `/static/…`).
    shell = Starlette(routes=[*ops.ROUTES, Mount("/", app=web)], lifespan=lifespan)
    shell.state.metrics = metrics
    shell.state.settings = settings
    return DockyardApp(
        shell,
        oci_app(),
        api,
        metrics,
        log_requests=settings.access_log,
        settings=settings,
        proxies=TrustedProxies(settings.trusted_proxies),
    )


class DockyardApp:
    """The ASGI entry point. ``/v2`` goes straight to the OCI surface (its own router and error boundary,
    without Starlette's generic middleware on the hot path); ``/api/`` and ``/v1/`` to the Hub API; everything
    else, and the lifespan, to the shell application that owns the shared state (its last route is the web hub)."""

    def __init__(
        self,
        shell: Starlette,
        oci: ASGIApp,
        api: ASGIApp,
        metrics: Metrics,
        *,
        log_requests: bool,
        settings: Settings,
        proxies: TrustedProxies | None = None,
    ) -> None:
        self.shell = shell
        self.proxies = proxies or TrustedProxies(())
        self.state = shell.state
        limits: dict[str, Any] = {
            "max_body_bytes": settings.max_request_body_bytes,
            "max_header_bytes": settings.max_request_header_bytes,
            "log_requests": log_requests,
        }
        self._oci = Front(
            oci,
            metrics,
            surface="oci",
            render=_oci_refusal,
            exempt=blob_or_manifest_write,
            boundary=failure_response,
            **limits,
        )
        self._api = Front(api, metrics, surface="api", render=_problem_refusal, **limits)
        self._other = Front(shell, metrics, surface="web", render=_problem_refusal, **limits)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            resolve_client(scope, self.proxies)  # the client behind a trusted proxy, for everything after
            path: str = scope["path"]
            if path.startswith("/v2/") or path == "/v2":
                scope["app"] = self.shell
                await self._oci(scope, receive, send)
                return
            if path.startswith(("/api/", "/v1/")):
                await self._api(scope, receive, send)
                return
        await self._other(scope, receive, send)


def _oci_refusal(status: int, message: str, limit: int) -> Response:
    return render_oci_error(OCIError("SIZE_INVALID", message, {"limit": limit}, status=status))


def _problem_refusal(status: int, message: str, limit: int) -> Response:
    from dockyard.http.api.problems import problem

    title = "Content Too Large" if status == 413 else "Request Header Fields Too Large"
    return problem(status, title, message, type_="urn:dockyard:error:request", limit=limit)


def app_from_environment() -> DockyardApp:
    """Factory for server workers in separate processes: settings come serialized from the parent, and logging
    is set up again because a spawned process starts with none."""
    die_with_supervisor()
    settings = load_serialized()
    configure_logging(settings.log_level)
    return create_app(settings)


def die_with_supervisor() -> None:
    """Have the kernel send this worker SIGTERM (a graceful stop) when the process supervising it dies, however
    it dies (SIGKILL, the OOM killer): a worker must never go on serving on its own. Linux only."""
    supervisor = supervisor_pid()
    if supervisor is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %s", ctypes.get_errno())
    if os.getppid() != supervisor:  # it died before the kernel was asked
        os.kill(os.getpid(), signal.SIGTERM)
