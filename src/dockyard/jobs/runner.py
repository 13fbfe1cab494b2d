"""The job runner: claims due jobs from the DB, runs their handlers concurrently under renewed leases, and
records each outcome. Any number of runners (in ``dockyard serve`` processes, ``dockyard worker`` processes,
replicas) share one queue safely.

``JobRunner(db, settings, handlers)`` then ``start()``/``stop()`` (or ``await run()`` until ``stop()``):

- **Claiming**: whenever a slot is free it claims up to that many due jobs of the kinds it has handlers for
  (``dockyard.jobs.store.claim``), marking them ``running`` with ``lease_owner`` = this runner and
  ``lease_until`` = now + ``jobs_lease_seconds``. An idle runner first checks with a cheap read, so polling
  costs no write transaction. It looks every ``jobs_poll_seconds``, at once after ``wake()`` (call it after
  committing a transaction that enqueued a job), and when a handler finishes.
- **Leases**: a background task renews the leases of running jobs every third of the lease. A job whose lease
  could not be renewed (another runner took it over, or the DB was unreachable until the lease ran out) has
  its handler cancelled; its outcome is never written over the new holder's. A runner that dies holds its jobs
  until their leases run out; then any runner claims them again — at once, for a runner that starts on the
  machine where the dead one ran (``store.expire_dead_owners``: a restart after ``kill -9`` does not wait).
- **Outcomes**: see ``dockyard.jobs.handlers`` (return, ``Retry``, ``Fail``, other exceptions). Retries wait
  ``Retry.after`` seconds or ``backoff_delay`` (``jobs_backoff_base_seconds``, ``jobs_backoff_cap_seconds``).
- **Stopping**: ``stop(grace)`` stops claiming, lets running handlers finish for up to ``grace`` seconds,
  cancels the rest and hands their jobs back (``queued``, due now, the interrupted attempt not counted), so
  another runner takes them at once.
- **Retention**: finished jobs older than ``jobs_retention_seconds`` are deleted in bounded batches, by one
  runner at a time (a ``dockyard.jobs.periodic`` lease).
- **Periodic jobs**: the ``periodic`` jobs it is given (``dockyard.jobs.periodic.PeriodicJob``) run while it runs,
  each on one replica at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from dockyard.core.holders import new_holder
from dockyard.db.engine import Database
from dockyard.jobs import store
from dockyard.jobs.handlers import Fail, Handler, JobContext, LeaseLost, Retry, backoff_delay
from dockyard.jobs.periodic import PeriodicJob
from dockyard.jobs.queue import DEAD, FAILED, QUEUED, SUCCEEDED
from dockyard.jobs.store import ClaimedJob
from dockyard.models.base import utcnow
from dockyard.settings import Settings

log = logging.getLogger("dockyard.jobs")

OutcomeObserver = Callable[[str, str, float], None]
"""Called with (kind, outcome, seconds) after each attempt; outcome is ``succeeded``, ``retry``, ``failed``,
``dead`` or ``lost`` (the lease went to another runner). For metrics."""

PURGE_BATCH = 1000


def default_owner() -> str:
    """A lease owner name unique to this runner (``core.holders``: host, machine, process id, a random suffix)."""
    return new_holder()


@dataclass
class _Active:
    job: ClaimedJob
    task: asyncio.Task[None]
    lease_until: datetime
    lost: bool = False  # cancelled because another runner holds the job now
    recording: bool = False  # the handler is done; its outcome is being written


@dataclass(frozen=True)
class _Outcome:
    state: str
    label: str
    run_at: datetime | None = None
    error: str | None = None


class JobRunner:
    """Runs jobs of the kinds in ``handlers`` (kind → handler). ``owner`` names this runner in lease columns.

    One ``run()`` per instance; ``stop()`` ends it. Safe to run many instances on one database at once.
    """

    def __init__(
        self,
        db: Database,
        settings: Settings,
        handlers: Mapping[str, Handler],
        *,
        owner: str | None = None,
        on_finished: OutcomeObserver | None = None,
        periodic: Sequence[PeriodicJob] = (),
    ) -> None:
        self.db = db
        self.settings = settings
        self.handlers = dict(handlers)
        self.owner = owner or default_owner()
        self.concurrency = settings.jobs_concurrency
        self.lease = timedelta(seconds=settings.jobs_lease_seconds)
        self._on_finished = on_finished
        self.periodic = tuple(periodic)
        self._wake = asyncio.Event()
        self._active: dict[int, _Active] = {}
        self._stopping = False
        self._stop_grace = 30.0
        self._started = False
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recordings: set[asyncio.Future[None]] = set()

    # ---- control -------------------------------------------------------------------------------------------

    def wake(self) -> None:
        """Look for due jobs now (call after committing a transaction that enqueued some)."""
        self._wake.set()

    def start(self) -> asyncio.Task[None]:
        """Run in a background task; ``stop()`` ends it."""
        self._task = asyncio.create_task(self.run(), name=f"jobs:{self.owner}")
        return self._task

    async def stop(self, grace: float = 30.0) -> None:
        """Stop claiming, wait up to ``grace`` seconds for running handlers, cancel the rest and hand their
        jobs back to the queue. Returns when the runner has stopped."""
        self._stop_grace = grace
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.wait({self._task})  # also when start() was called and run() has not begun yet
            if not self._task.cancelled() and self._task.exception() is not None:
                log.error("the job runner had failed", exc_info=self._task.exception())
        elif self._started:
            await self._stopped.wait()

    @property
    def task(self) -> asyncio.Task[None]:
        """The task ``start()`` created."""
        if self._task is None:
            raise RuntimeError("the runner was not started")
        return self._task

    @property
    def running_jobs(self) -> list[int]:
        """Ids of the jobs whose handlers are running in this runner now."""
        return sorted(self._active)

    async def run(self) -> None:
        """Claim and run jobs until ``stop()``. Cancelling the task that runs it abandons running handlers at
        once (their jobs are handed back as by ``stop``)."""
        if self._started:
            raise RuntimeError("a JobRunner runs once")
        self._started = True
        retention = timedelta(seconds=min(3600.0, max(60.0, self.settings.jobs_retention_seconds / 24)))
        periodic = [PeriodicJob("jobs.retention", retention, self.purge_finished, ttl=timedelta(minutes=15))]
        background = [
            asyncio.create_task(self._renew_leases()),
            *(
                asyncio.create_task(job.schedule(self.db), name=f"periodic:{job.name}")
                for job in periodic + list(self.periodic)
            ),
        ]
        try:
            await self._claim_loop()
            if self._active:
                await asyncio.wait([active.task for active in self._active.values()], timeout=self._stop_grace)
        finally:
            for task in background:
                task.cancel()
            await asyncio.gather(*background, return_exceptions=True)
            await self._abandon()
            self._stopped.set()

    async def _claim_loop(self) -> None:
        try:
            async with self.db.write() as conn:
                freed = await store.expire_dead_owners(conn, utcnow())
            if freed:
                log.info("%d job(s) of runners that died on this machine are claimable again", freed)
        except Exception:
            log.warning("looking for jobs of dead runners failed", exc_info=True)
        failures = 0
        while not self._stopping:
            self._wake.clear()
            wait = self.settings.jobs_poll_seconds
            free = self.concurrency - len(self._active)
            if free > 0:
                try:
                    for job in await self.claim(free):
                        self._spawn(job)
                    failures = 0
                except Exception:
                    failures += 1
                    log.exception("claiming jobs failed (%d in a row)", failures)
                    wait = min(30.0, wait * 2**failures)
            if self._stopping:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)

    # ---- claiming and running ------------------------------------------------------------------------------

    async def claim(self, limit: int) -> list[ClaimedJob]:
        """Claim up to ``limit`` due jobs for this runner (without running them). ``run()`` uses it; tests use it
        to play a runner that dies holding jobs."""
        kinds = list(self.handlers)
        async with self.db.read() as conn:
            if not await store.any_due(conn, kinds, utcnow()):
                return []
        async with self.db.write() as conn:
            return await store.claim(conn, kinds=kinds, limit=limit, owner=self.owner, now=utcnow(), lease=self.lease)

    def _spawn(self, job: ClaimedJob) -> None:
        task = asyncio.create_task(self._execute(job), name=f"job:{job.kind}:{job.id}")
        self._active[job.id] = _Active(job, task, lease_until=utcnow() + self.lease)

        def done(_: asyncio.Task[None]) -> None:
            self._active.pop(job.id, None)
            self._wake.set()  # a slot is free

        task.add_done_callback(done)

    async def _execute(self, job: ClaimedJob) -> None:
        handler = self.handlers[job.kind]
        context = JobContext(
            job_id=job.id,
            kind=job.kind,
            payload=job.payload,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            expires_at=job.expires_at,
            _renew=partial(self._renew_one, job.id),
        )
        started = time.monotonic()
        try:
            await handler(context)
        except LeaseLost:
            log.warning("job %d (%s) attempt %d: lease lost to another runner", job.id, job.kind, job.attempt)
            self._observe(job, "lost", started)
            return
        except Retry as retry:
            outcome = self._retry(job, retry.after, retry.reason)
        except Fail as fail:
            outcome = _Outcome(FAILED, "failed", error=fail.reason)
        except Exception as exc:
            log.exception("job %d (%s) attempt %d raised", job.id, job.kind, job.attempt)
            outcome = self._retry(job, None, f"{type(exc).__name__}: {exc}")
        else:
            outcome = _Outcome(SUCCEEDED, "succeeded")
        active = self._active.get(job.id)
        if active is not None:
            active.recording = True
        # Shielded: once the handler is done, a stop() must not cut the outcome's transaction short.
        recording = asyncio.ensure_future(self._record(job, outcome, started))
        self._recordings.add(recording)
        recording.add_done_callback(self._recordings.discard)
        await asyncio.shield(recording)

    def _retry(self, job: ClaimedJob, after: float | None, reason: str) -> _Outcome:
        if job.attempt >= job.max_attempts:
            return _Outcome(DEAD, "dead", error=f"gave up after {job.attempt} attempts: {reason}")
        if after is None:
            after = backoff_delay(
                job.attempt,
                base=self.settings.jobs_backoff_base_seconds,
                cap=self.settings.jobs_backoff_cap_seconds,
            )
        run_at = utcnow() + timedelta(seconds=after)
        if job.expires_at is not None and run_at > job.expires_at:
            return _Outcome(DEAD, "dead", error=f"next attempt would fall after its horizon: {reason}")
        return _Outcome(QUEUED, "retry", run_at=run_at, error=reason)

    async def _record(self, job: ClaimedJob, outcome: _Outcome, started: float) -> None:
        for attempt in range(4):
            try:
                async with self.db.write() as conn:
                    written = await store.finish(
                        conn,
                        job,
                        self.owner,
                        state=outcome.state,
                        now=utcnow(),
                        run_at=outcome.run_at,
                        error=outcome.error,
                    )
                break
            except Exception:
                if attempt == 3:
                    log.exception("job %d: recording its outcome failed; its lease will run out", job.id)
                    return
                await asyncio.sleep(0.5 * 2**attempt)
        if not written:
            log.warning("job %d (%s): lease lost before the outcome was recorded", job.id, job.kind)
            self._observe(job, "lost", started)
            return
        level = {SUCCEEDED: logging.DEBUG, QUEUED: logging.INFO}.get(outcome.state, logging.WARNING)
        log.log(
            level, "job %d (%s) attempt %d: %s %s", job.id, job.kind, job.attempt, outcome.label, outcome.error or ""
        )
        self._observe(job, outcome.label, started)

    def _observe(self, job: ClaimedJob, label: str, started: float) -> None:
        if self._on_finished is not None:
            try:
                self._on_finished(job.kind, label, time.monotonic() - started)
            except Exception:
                log.exception("job outcome observer failed")

    # ---- leases --------------------------------------------------------------------------------------------

    async def _renew_one(self, job_id: int) -> bool:
        until = utcnow() + self.lease
        async with self.db.write() as conn:
            held = job_id in await store.renew(conn, [job_id], self.owner, until)
        active = self._active.get(job_id)
        if active is not None and held:
            active.lease_until = until
        return held

    async def _renew_leases(self) -> None:
        interval = self.lease.total_seconds() / 3
        while True:
            await asyncio.sleep(interval)
            ids = list(self._active)
            if not ids:
                continue
            until = utcnow() + self.lease
            held: set[int] | None
            try:
                async with self.db.write() as conn:
                    held = await store.renew(conn, ids, self.owner, until)
            except Exception:
                log.warning("renewing job leases failed", exc_info=True)
                held = None
            now = utcnow()
            for job_id in ids:
                active = self._active.get(job_id)
                if active is None or active.recording:
                    continue
                if held is not None and job_id in held:
                    active.lease_until = until
                elif held is not None or active.lease_until <= now:
                    log.warning("job %d (%s): lease lost; cancelling this attempt", job_id, active.job.kind)
                    active.lost = True
                    active.task.cancel()

    async def _abandon(self) -> None:
        """Cancel the handlers still running and hand their jobs back to the queue."""
        active = list(self._active.values())
        if not active:
            await asyncio.gather(*self._recordings, return_exceptions=True)
            return
        for item in active:
            item.task.cancel()
        await asyncio.gather(*(item.task for item in active), return_exceptions=True)
        await asyncio.gather(*self._recordings, return_exceptions=True)
        ids = [item.job.id for item in active if not item.lost]
        try:
            async with self.db.write() as conn:
                released = await store.release(conn, ids, self.owner, utcnow())
            if released:
                log.info("handed %d unfinished jobs back to the queue", released)
        except Exception:
            log.exception("handing jobs back failed; they run again when their leases run out")

    # ---- retention -----------------------------------------------------------------------------------------

    async def purge_finished(self) -> int:
        """Delete jobs that finished more than ``jobs_retention_seconds`` ago, in batches; how many went."""
        cutoff = utcnow() - timedelta(seconds=self.settings.jobs_retention_seconds)
        total = 0
        while True:
            async with self.db.write() as conn:
                deleted = await store.purge(conn, finished_before=cutoff, limit=PURGE_BATCH)
            total += deleted
            if deleted < PURGE_BATCH:
                return total
            await asyncio.sleep(0)  # let other writers in between batches
