"""Which handler runs which job kind, in every process that runs jobs (``dockyard serve`` and ``dockyard worker``).

A domain package registers handler *factories* in its ``tasks.py``; a factory gets the process's shared
resources (``JobEnvironment``) once, when the runner starts, and returns the handler::

    from dockyard.jobs.handlers import Handler, JobContext
    from dockyard.jobs.registry import JobEnvironment, register

    @register("webhooks.deliver")
    def deliver(env: JobEnvironment) -> Handler:
        sender = WebhookSender(env.db, env.settings)          # built once per process
        env.resources.push_async_callback(sender.aclose)      # closed when the runner stops

        async def handle(job: JobContext) -> None:
            await sender.deliver(job.payload["delivery_id"])

        return handle

``HANDLER_KINDS`` names Dockyard's own job kinds and the task module that registers each, and the
``jobs_handler_modules`` setting adds more modules (plugins; the tests' handlers). ``running_jobs(db, store,
settings)`` imports the plugins and builds their handlers at once, but Dockyard's own modules only when the first
job of one of their kinds runs (``LazyHandler``): most kinds never run in most processes, and their modules pull in
libraries a server does not otherwise load (SBOM writers, the OSV matcher, mail). It runs a ``JobRunner`` while the
context is open — the one way ``dockyard serve`` and ``dockyard worker`` start jobs, so both run the same handlers.
Modules are named as strings because registration is the plugin edge: the composition root decides what is
loaded, and this layer never imports the domain packages above it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from dockyard.db.engine import Database
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.periodic import PeriodicJob
from dockyard.jobs.runner import JobRunner, OutcomeObserver
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore

# Dockyard's own job kinds, each with the module whose ``@register`` builds its handler (each domain package's
# ``tasks.py``); tests/unit/jobs/test_registry.py checks that importing the modules registers exactly these kinds.
HANDLER_KINDS: Mapping[str, str] = {
    "webhooks.deliver": "dockyard.webhooks.tasks",
    "trust.verify": "dockyard.trust.tasks",
    "trust.reverify": "dockyard.trust.tasks",
    "analysis.image": "dockyard.analysis.tasks",
    "layers.index": "dockyard.analysis.tasks",
    "vulns.scan": "dockyard.vulns.tasks",
    "inventory.compute": "dockyard.inventory.tasks",
    "builds.run": "dockyard.builds.tasks",
    "builds.archive_log": "dockyard.builds.tasks",
    "builds.poll": "dockyard.builds.tasks",
    "builds.attest": "dockyard.provenance.tasks",
    "replication.run": "dockyard.replication.tasks",
    "invites.send": "dockyard.accounts.tasks",
    "gc.run": "dockyard.registry.tasks",
}
# The modules of ``HANDLER_KINDS``, once each.
HANDLER_MODULES: tuple[str, ...] = tuple(dict.fromkeys(HANDLER_KINDS.values()))


@dataclass
class JobEnvironment:
    """What a handler factory may use: the process's DB, settings and blob store; ``resources`` to close things
    when the runner stops; ``wake()`` to have the runner look for due jobs at once (after enqueueing some)."""

    db: Database
    settings: Settings
    store: BlobStore
    resources: AsyncExitStack
    _runner: JobRunner | None = field(default=None, repr=False)

    def wake(self) -> None:
        if self._runner is not None:
            self._runner.wake()


HandlerFactory = Callable[[JobEnvironment], Handler]
F = TypeVar("F", bound=HandlerFactory)


class HandlerRegistry:
    """Job kind → handler factory. A kind is registered once; registering it again is an error."""

    def __init__(self) -> None:
        self._factories: dict[str, HandlerFactory] = {}

    def register(self, kind: str) -> Callable[[F], F]:
        """Decorator: ``factory`` builds the handler for ``kind``."""

        def decorate(factory: F) -> F:
            self.add(kind, factory)
            return factory

        return decorate

    def add(self, kind: str, factory: HandlerFactory) -> None:
        existing = self._factories.get(kind)
        if existing is not None and existing is not factory:
            raise ValueError(f"job kind {kind!r} already has a handler ({existing.__module__}.{existing.__qualname__})")
        self._factories[kind] = factory

    def kinds(self) -> list[str]:
        return sorted(self._factories)

    def module_of(self, kind: str) -> str:
        """The module that registered ``kind``'s factory; ``KeyError`` when none did."""
        return self._factories[kind].__module__

    def build(self, env: JobEnvironment) -> dict[str, Handler]:
        return {kind: factory(env) for kind, factory in self._factories.items()}

    def build_one(self, kind: str, env: JobEnvironment) -> Handler:
        """The handler of ``kind``; ``KeyError`` when no factory is registered for it."""
        return self._factories[kind](env)


HANDLERS = HandlerRegistry()
"""The process-wide registry that ``register`` adds to and ``running_jobs`` builds from."""

register = HANDLERS.register


def import_handler_modules(names: Iterable[str]) -> None:
    """Import each named module so that its ``@register`` decorators run. Raises ``ValueError`` naming a module
    that cannot be imported."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ValueError(f"job handler module {name!r} cannot be imported: {exc}") from exc


class LazyHandler:
    """The handler of one of Dockyard's own kinds, built on its first job: the module is imported (its
    ``@register`` runs) and the factory called then, once per runner. Import and factory are synchronous, so two
    jobs of the kind starting together cannot build it twice. A module that cannot be imported fails the job
    (``ValueError``) as a handler's own error would: the job is retried."""

    def __init__(self, kind: str, module: str, env: JobEnvironment, registry: HandlerRegistry) -> None:
        self.kind = kind
        self.module = module
        self._env = env
        self._registry = registry
        self._handler: Handler | None = None

    async def __call__(self, job: JobContext) -> None:
        if self._handler is None:
            import_handler_modules([self.module])
            self._handler = self._registry.build_one(self.kind, self._env)
        await self._handler(job)


@asynccontextmanager
async def running_jobs(
    db: Database,
    store: BlobStore,
    settings: Settings,
    *,
    registry: HandlerRegistry = HANDLERS,
    owner: str | None = None,
    on_finished: OutcomeObserver | None = None,
    stop_grace: float = 30.0,
    periodic: Sequence[PeriodicJob] = (),
    kinds: Collection[str] | None = None,
) -> AsyncIterator[JobRunner]:
    """Load ``settings.jobs_handler_modules`` and build their handlers (``HANDLER_KINDS``' are built on first use:
    ``LazyHandler``), and run a ``JobRunner`` in the background until the context exits (then ``stop(stop_grace)``
    and close what the factories opened), with the ``periodic`` jobs. ``kinds``: run only the handlers of these job
    kinds (``dockyard builder`` runs builds only). Yields the runner, whose ``wake()`` in-process enqueuers may
    call after commit."""
    import_handler_modules(settings.jobs_handler_modules)
    async with AsyncExitStack() as resources:
        env = JobEnvironment(db, settings, store, resources)
        own = HANDLER_KINDS if registry is HANDLERS else {}
        # Plugins' factories (registered by the import above) are built now; Dockyard's own kinds on their first
        # job, even when the process has imported their module for other reasons.
        handlers: dict[str, Handler] = {
            kind: registry.build_one(kind, env) for kind in registry.kinds() if kind not in own
        }
        handlers.update({kind: LazyHandler(kind, module, env, registry) for kind, module in own.items()})
        if kinds is not None:
            handlers = {kind: handler for kind, handler in handlers.items() if kind in kinds}
        runner = JobRunner(db, settings, handlers, owner=owner, on_finished=on_finished, periodic=periodic)
        env._runner = runner
        runner.start()
        try:
            yield runner
        finally:
            await runner.stop(stop_grace)
