"""The webhook job handler, registered with the job runner in every process that runs jobs: ``webhooks.deliver``
(one attempt at one delivery). Deliveries are made from outbox events by ``dockyard.webhooks.dispatch``'s
subscriber, which the composition root registers with the event bus."""

from __future__ import annotations

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.webhooks.delivery import DeliveryWorker
from dockyard.webhooks.queueing import DELIVER
from dockyard.webhooks.sender import new_client


@register(DELIVER)
def deliver(env: JobEnvironment) -> Handler:
    client = new_client()
    env.resources.push_async_callback(client.aclose)
    worker = DeliveryWorker(env.db, env.settings, client)

    async def handle(job: JobContext) -> None:
        await worker.handle(job)

    return handle
