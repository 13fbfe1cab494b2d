"""Job handlers for tests that run ``dockyard worker`` as a real process: loaded through the
``jobs_handler_modules`` setting (``DOCKYARD_JOBS_HANDLER_MODULES=tests.support.job_handlers``).

Both append a line to the file named by the payload's ``path`` so the test can see what ran:
``test.touch`` writes ``done <job id> <attempt>``; ``test.sleep`` writes ``start …``, sleeps ``seconds`` and
then writes ``done …``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from dockyard.jobs.handlers import Handler, JobContext
from dockyard.jobs.registry import JobEnvironment, register


def _note(job: JobContext, word: str) -> None:
    with Path(job.payload["path"]).open("a") as fh:
        fh.write(f"{word} {job.job_id} {job.attempt}\n")


@register("test.touch")
def touch(env: JobEnvironment) -> Handler:
    async def handle(job: JobContext) -> None:
        _note(job, "done")

    return handle


@register("test.sleep")
def sleep(env: JobEnvironment) -> Handler:
    async def handle(job: JobContext) -> None:
        _note(job, "start")
        await asyncio.sleep(float(job.payload.get("seconds", 0)))
        _note(job, "done")

    return handle
