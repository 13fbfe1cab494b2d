"""Brute-force protection for passwords: exponential backoff per (account, client address) and per client address,
counted in the DB so that every replica sees the same counts. There is no lock-out of an account as such: failures
from one address never stop the right password from another address that has no recent failures.

Rows of ``login_failures``: ``pair:<account>|<address>`` (one account from one address) and ``ip:<address>`` (one
address, any account). ``failures`` counts the attempts not cleared by a success — attempts still being verified
included —, ``window_start`` is the time of the last attempt, ``locked_until`` the end of the current backoff.

An attempt is *reserved* before its password is verified, in one write transaction: if either key is backing off
the attempt is refused (``RateLimited``, 429 with ``Retry-After``) without verifying anything; else both counts go
up, and once a count reaches its limit (``login_max_failures_per_user`` for the pair, ``…_per_ip`` for the
address) the key backs off for ``login_backoff_seconds``, doubled for every further attempt, at most
``login_backoff_max_seconds``. So N parallel attempts cannot all pass the check: at most the limit are verified.
A success deletes the pair's row and gives the address its attempt back; an attempt that was never verified
(the process was too busy) gives both back. Counts are forgotten ``login_failure_window_seconds`` after the last
attempt (and after the backoff) of a quiet key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import RateLimited
from dockyard.models import LoginFailure
from dockyard.models.base import utcnow
from dockyard.settings import Settings

_PRUNE_EVERY = 256  # reservations per process between deletions of long-quiet rows


def pair_key(username: str, address: str) -> str:
    return f"pair:{username[:200]}|{address[:64]}"


def ip_key(address: str) -> str:
    return f"ip:{address[:64]}"


@dataclass(frozen=True, slots=True)
class Reservation:
    """One counted attempt: ``release`` it as a success, a failure or as never verified."""

    pair: str
    address: str

    @property
    def keys(self) -> tuple[str, str]:
        first, second = sorted((self.pair, self.address))
        return first, second


class LoginThrottle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._limits = {"pair": settings.login_max_failures_per_user, "ip": settings.login_max_failures_per_ip}
        self._base = settings.login_backoff_seconds
        self._cap = settings.login_backoff_max_seconds
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._reservations = 0

    def _limit(self, key: str) -> int:
        return self._limits[key.split(":", 1)[0]]

    def backoff(self, failures: int, limit: int) -> timedelta:
        """The delay after the ``failures``-th attempt (none below the limit; base, then doubling, capped)."""
        if failures < limit:
            return timedelta(0)
        return timedelta(seconds=min(float(self._cap), self._base * 2 ** min(failures - limit, 32)))

    async def reserve(self, username: str, address: str) -> Reservation:
        """Count an attempt before verifying it; raise RateLimited (counting nothing) while a key backs off."""
        reservation = Reservation(pair_key(username, address), ip_key(address))
        now = utcnow()

        async def work(conn: AsyncConnection) -> None:
            for key in reservation.keys:  # always in the same order: no deadlock between two reservations
                await insert_ignore(
                    conn, LoginFailure, {"key": key, "failures": 0, "window_start": now, "locked_until": None}
                )
                row = (
                    await conn.execute(
                        select(LoginFailure.failures, LoginFailure.window_start, LoginFailure.locked_until)
                        .where(LoginFailure.key == key)
                        .with_for_update()
                    )
                ).one()
                if row.locked_until is not None and row.locked_until > now:
                    raise _refusal(key, row.locked_until - now)  # rolls the transaction back
                failures = row.failures
                quiet_since = max(row.window_start, row.locked_until or row.window_start)
                if now - quiet_since > self._window:
                    failures = 0
                failures += 1
                delay = self.backoff(failures, self._limit(key))
                await conn.execute(
                    update(LoginFailure)
                    .where(LoginFailure.key == key)
                    .values(failures=failures, window_start=now, locked_until=now + delay if delay else None)
                )

        await self._db.run_write(work)
        self._reservations += 1
        if self._reservations % _PRUNE_EVERY == 0:
            await self._prune(now)
        return reservation

    async def failed(self, conn: AsyncConnection, reservation: Reservation) -> None:
        """The reserved attempt failed: it stays counted; its time is the last attempt's. Runs in the caller's
        transaction (which records the failure in the audit log too)."""
        now = utcnow()
        for key in reservation.keys:  # one row at a time, in the order reserve locks them (no deadlock)
            await conn.execute(update(LoginFailure).where(LoginFailure.key == key).values(window_start=now))

    async def succeeded(self, reservation: Reservation) -> None:
        """The right password: the pair starts afresh; the address gets this attempt back."""

        async def work(conn: AsyncConnection) -> None:
            for key in reservation.keys:  # in the order reserve locks them (no deadlock)
                if key == reservation.pair:
                    await conn.execute(delete(LoginFailure).where(LoginFailure.key == key))
                else:
                    await self._give_back(conn, key)

        await self._db.run_write(work)

    async def cancelled(self, reservation: Reservation) -> None:
        """The attempt was never verified (the process was too busy): both keys get it back."""

        async def work(conn: AsyncConnection) -> None:
            for key in reservation.keys:
                await self._give_back(conn, key)

        await self._db.run_write(work)

    async def _give_back(self, conn: AsyncConnection, key: str) -> None:
        failures = (
            await conn.execute(select(LoginFailure.failures).where(LoginFailure.key == key).with_for_update())
        ).scalar_one_or_none()
        if failures is None:
            return
        failures = max(0, failures - 1)
        values: dict[str, object] = {"failures": failures}
        if failures < self._limit(key):
            values["locked_until"] = None
        await conn.execute(update(LoginFailure).where(LoginFailure.key == key).values(**values))

    async def _prune(self, now: datetime) -> None:
        """Delete rows quiet for longer than the window plus the longest backoff: they count nothing any more."""
        horizon = now - self._window - timedelta(seconds=self._cap)

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(delete(LoginFailure).where(LoginFailure.window_start < horizon))

        await self._db.run_write(work)


def _refusal(key: str, remaining: timedelta) -> RateLimited:
    wait = max(1, math.ceil(remaining.total_seconds()))
    what = "this account from this address" if key.startswith("pair:") else "this address"
    return RateLimited(
        "credentials", f"too many failed logins for {what}; try again in {wait} seconds", retry_after=wait
    )


def busy() -> RateLimited:
    """Every password-verification slot of this process is taken: come back in a second."""
    return RateLimited("credentials", "too many logins at once; try again in 1 second", retry_after=1)
