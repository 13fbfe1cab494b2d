"""The webhook job handler, registered with the job runner in every process that runs jobs: ``webhooks.deliver``
(one attempt at one delivery). Deliveries are made from outbox events by ``dockyard.webhooks.dispatch``'s
subscriber, which the composition root registers with the event bus.

The sending side — httpx and the HTTP client with its TLS context — is loaded and made on the first delivery, not
when the job runner starts: most server processes never deliver a webhook, and it costs every one of them a
quarter of a second of start-up and a few MiB."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.webhooks.queueing import DELIVER

if TYPE_CHECKING:
    from dockyard.webhooks.delivery import DeliveryWorker


@register(DELIVER)
def deliver(env: JobEnvironment) -> Handler:
    workers: list[DeliveryWorker] = []  # made on the first delivery, then kept

    async def handle(job: JobContext) -> None:
        if not workers:
            from dockyard.webhooks.delivery import DeliveryWorker
            from dockyard.webhooks.sender import new_client

            client = new_client()
            env.resources.push_async_callback(client.aclose)
            workers.append(DeliveryWorker(env.db, env.settings, client))
        await workers[0].handle(job)

    return handle
