"""What a job handler is and how it reports its outcome: ``Handler``, ``JobContext``, ``Retry``, ``Fail``.

A handler is ``async def handle(job: JobContext) -> None`` registered for one job kind. It reads ``job.payload``
(ids and plain values), does its work in its own units of work, and then:

- returns normally: the job ``succeeded``;
- raises ``Retry(after, reason)``: run it again ``after`` seconds from now, or, with ``after=None``, after an
  exponential backoff with full jitter (``backoff_delay``); the attempt counts towards ``max_attempts``;
- raises ``Fail(reason)``: the job ``failed`` for good, no retry;
- raises anything else: logged with its traceback and retried with backoff, as ``Retry(None, repr(exc))``.

When no attempt is left, or the next run would fall after the job's ``expires_at``, a retry makes it ``dead``.

Handlers may run more than once for one job (a runner can die after the work and before recording it), and, if
a runner stalls longer than its lease, even twice at once: make them idempotent. A handler that works longer
than the lease needs no action (the runner renews leases in the background); ``await job.heartbeat()`` renews
this job's lease at once and raises ``LeaseLost`` if another runner has taken the job over, which is a good
check before a side effect that must not happen twice.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Jitter from a generator of this module's own: the process-wide `random` state stays untouched (a test
# framework sharing the process, such as Hypothesis, watches it).
_JITTER = random.Random()  # noqa: S311 - jitter only


class Retry(Exception):
    """Run the job again ``after`` seconds from now (``None``: exponential backoff with jitter)."""

    def __init__(self, after: float | None = None, reason: str = "") -> None:
        super().__init__(reason or "retry requested")
        if after is not None and after < 0:
            raise ValueError("Retry.after must not be negative")
        self.after = after
        self.reason = reason or "retry requested"


class Fail(Exception):
    """The job cannot succeed; do not retry it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LeaseLost(Exception):
    """Another runner holds this job now (this runner's lease ran out); stop working on it."""


@dataclass
class JobContext:
    """One attempt at one job, as its handler sees it."""

    job_id: int
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first run
    max_attempts: int
    expires_at: datetime | None
    _renew: Callable[[], Awaitable[bool]] = field(repr=False)

    @property
    def is_last_attempt(self) -> bool:
        """No retry follows this attempt (a ``Retry`` now makes the job ``dead``), as far as attempts go."""
        return self.attempt >= self.max_attempts

    async def heartbeat(self) -> None:
        """Renew this job's lease now; raise ``LeaseLost`` if this runner no longer holds it."""
        if not await self._renew():
            raise LeaseLost(f"job {self.job_id} is held by another runner")


Handler = Callable[[JobContext], Awaitable[None]]


def backoff_delay(
    attempt: int, *, base: float, cap: float, rand: Callable[[float, float], float] = _JITTER.uniform
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): "full jitter", a uniform draw from
    ``[0, min(cap, base · 2^(attempt-1))]``, which spreads retries of jobs that failed together."""
    ceiling = min(cap, base * 2 ** min(max(attempt, 1) - 1, 62))
    return rand(0.0, ceiling)
