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

``HANDLER_MODULES`` lists Dockyard's own task modules and the ``jobs_handler_modules`` setting adds more
(plugins; the tests' handlers). ``running_jobs(db, store, settings)`` imports them, builds every handler and runs
a ``JobRunner`` while the context is open — the one way ``dockyard serve`` and ``dockyard worker`` start jobs, so
both run the same handlers. Modules are named as strings because registration is the plugin edge: the
composition root decides what is loaded, and this layer never imports the domain packages above it.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from dockyard.db.engine import Database
from dockyard.jobs.handlers import Handler
from dockyard.jobs.periodic import PeriodicJob
from dockyard.jobs.runner import JobRunner, OutcomeObserver
from dockyard.settings import Settings
from dockyard.storage.base import BlobStore

# Dockyard's own modules that register handlers when imported (each domain package's ``tasks.py``).
HANDLER_MODULES: tuple[str, ...] = (
    "dockyard.webhooks.tasks",
    "dockyard.trust.tasks",
    "dockyard.layers.tasks",
    "dockyard.vulns.tasks",
    "dockyard.inventory.tasks",
    "dockyard.builds.tasks",
    "dockyard.provenance.tasks",
    "dockyard.replication.tasks",
    "dockyard.accounts.tasks",
    "dockyard.registry.tasks",
)


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

    def build(self, env: JobEnvironment) -> dict[str, Handler]:
        return {kind: factory(env) for kind, factory in self._factories.items()}


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
    """Load ``HANDLER_MODULES`` and ``settings.jobs_handler_modules``, build the handlers, and run a
    ``JobRunner`` in the background until the context exits (then ``stop(stop_grace)`` and close what the
    factories opened), with the ``periodic`` jobs. ``kinds``: run only the handlers of these job kinds (``dockyard
    builder`` runs builds only). Yields the runner, whose ``wake()`` in-process enqueuers may call after commit."""
    import_handler_modules([*HANDLER_MODULES, *settings.jobs_handler_modules])
    async with AsyncExitStack() as resources:
        env = JobEnvironment(db, settings, store, resources)
        handlers = registry.build(env)
        if kinds is not None:
            handlers = {kind: handler for kind, handler in handlers.items() if kind in kinds}
        runner = JobRunner(db, settings, handlers, owner=owner, on_finished=on_finished, periodic=periodic)
        env._runner = runner
        runner.start()
        try:
            yield runner
        finally:
            await runner.stop(stop_grace)
