"""``dockyard worker``: a process that only runs background jobs (no HTTP), until SIGTERM or SIGINT.

It migrates the DB, then runs the same background work as ``dockyard serve`` (``dockyard.app.background_work``:
the job handlers, the periodic jobs and the event bus).
Run any number of them next to the servers (start the servers with ``--no-jobs`` to keep jobs off them). On
SIGTERM/SIGINT it stops claiming, gives running handlers ``--grace`` seconds, hands the rest back to the queue
and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

import click

from dockyard.cli.output import settings_options
from dockyard.logs import configure_logging
from dockyard.settings import Settings, SettingsError, load_settings

log = logging.getLogger("dockyard.worker")


@click.command()
@settings_options
@click.option("--concurrency", type=int, default=None, help="Handlers running at once (default: jobs_concurrency).")
@click.option("--grace", type=float, default=30.0, show_default=True, help="Seconds running jobs get on SIGTERM.")
def worker(config: Path | None, data_dir: Path | None, concurrency: int | None, grace: float) -> None:
    """Run background jobs (webhook deliveries, …) and the event bus without serving HTTP, until SIGTERM or SIGINT."""
    from dockyard.app import resolve_secret_key
    from dockyard.jobs.registry import HANDLER_MODULES, import_handler_modules
    from dockyard.migrations.runner import upgrade_sync

    try:
        settings = resolve_secret_key(load_settings(config, data_dir=data_dir, jobs_concurrency=concurrency))
        import_handler_modules([*HANDLER_MODULES, *settings.jobs_handler_modules])  # fail before migrating
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level)
    upgrade_sync(settings.effective_database_url)
    asyncio.run(run_worker(settings, grace=grace))


async def run_worker(settings: Settings, *, grace: float = 30.0) -> None:
    """Run the job runner and the event bus until SIGTERM/SIGINT; raise if the runner itself stops on an error."""
    from dockyard.app import background_work
    from dockyard.db.engine import Database
    from dockyard.storage.factory import open_blob_store

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = Database(
        settings.effective_database_url,
        pool_size=settings.db_pool_size,
        sqlite_synchronous=settings.sqlite_synchronous.upper(),
    )
    store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
    try:
        async with background_work(db, store, settings, stop_grace=grace) as runner:
            log.info("worker %s running job kinds: %s", runner.owner, ", ".join(sorted(runner.handlers)) or "none")
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({stopping, runner.task}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if runner.task.done():
                runner.task.result()  # the runner failed: raise its error
            log.info("worker %s stopping", runner.owner)
        log.info("worker stopped")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await store.close()
        await db.close()
