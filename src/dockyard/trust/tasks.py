"""The trust job handlers, registered with the job runner in every process that runs jobs: ``trust.verify`` (the
signatures of one image, after a signature arrived) and ``trust.reverify`` (every signed image of a namespace,
after its keys or keyless identities changed). See ``dockyard.trust.reverify``."""

from __future__ import annotations

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.registry.context import RegistryContext
from dockyard.trust.checker import TrustChecker
from dockyard.trust.reverify import REVERIFY, VERIFY, reverify_namespace


def _checker(env: JobEnvironment) -> TrustChecker:
    return TrustChecker(RegistryContext(db=env.db, store=env.store, settings=env.settings))


@register(VERIFY)
def verify(env: JobEnvironment) -> Handler:
    checker = _checker(env)

    async def handle(job: JobContext) -> None:
        await checker.signatures(str(job.payload["repository"]), str(job.payload["digest"]))

    return handle


@register(REVERIFY)
def reverify(env: JobEnvironment) -> Handler:
    checker = _checker(env)

    async def handle(job: JobContext) -> None:
        await reverify_namespace(checker, str(job.payload["namespace"]))

    return handle
