"""The ``builds.attest`` job (queued by the build pipeline when an image is pushed): the ``signing`` stage of a build,
run where blob storage is (``dockyard serve`` and ``worker``; ``dockyard builder`` runs only ``builds.run``)."""

from __future__ import annotations

from dockyard.auth.secrets import SecretBox
from dockyard.builds import records
from dockyard.builds.attestation import AttestInputs
from dockyard.inventory.tasks import inventory_service
from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.provenance.attest import Attester
from dockyard.registry.context import RegistryContext
from dockyard.registry.services import Registry
from dockyard.trust.manage import TrustService


@register(records.ATTEST)
def attest(env: JobEnvironment) -> Handler:
    ctx = RegistryContext(db=env.db, store=env.store, settings=env.settings)
    trust = TrustService(env.db, SecretBox(env.settings.secret_key))
    attester = Attester(env.db, Registry.build(ctx), inventory_service(ctx), trust, env.settings)

    async def handle(job: JobContext) -> None:
        await attester.attest(AttestInputs.from_payload(job.payload))
        env.wake()  # the log's archive job

    return handle
