"""The webhook job handlers, registered with the job runner in every process that runs jobs: ``webhooks.deliver``
(one attempt at one delivery) and the dispatcher, which turns new outbox events into deliveries. The dispatcher
is started by the deliver handler's factory, so ``dockyard serve`` and ``dockyard worker`` both run it."""

from __future__ import annotations

import asyncio
import contextlib

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register
from dockyard.registry.blobs import BlobService
from dockyard.registry.context import RegistryContext
from dockyard.webhooks.delivery import DeliveryWorker
from dockyard.webhooks.dispatch import Dispatcher
from dockyard.webhooks.queueing import DELIVER
from dockyard.webhooks.sender import new_client


@register(DELIVER)
def deliver(env: JobEnvironment) -> Handler:
    client = new_client()
    env.resources.push_async_callback(client.aclose)
    worker = DeliveryWorker(env.db, env.settings, client)
    blobs = BlobService(RegistryContext(db=env.db, store=env.store, settings=env.settings))
    dispatcher = Dispatcher(env.db, blobs, env.settings, wake=env.wake)
    task = asyncio.get_running_loop().create_task(dispatcher.run(), name="webhooks.dispatch")

    async def stop_dispatcher() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    env.resources.push_async_callback(stop_dispatcher)

    async def handle(job: JobContext) -> None:
        await worker.handle(job)

    return handle
