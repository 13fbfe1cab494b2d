"""Brute-force protection: failed logins counted per user name and per source address in the DB (so that every
replica sees the same counts); past the limit within the window, further attempts get 429 until the lockout
ends. A successful login clears the user's counter."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import delete, select, update

from dockyard.db.engine import Database
from dockyard.db.statements import insert_ignore
from dockyard.errors import RateLimited
from dockyard.models import LoginFailure
from dockyard.models.base import utcnow
from dockyard.settings import Settings


def user_key(username: str) -> str:
    return f"user:{username[:255]}"


def ip_key(address: str) -> str:
    return f"ip:{address[:64]}"


class LoginThrottle:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._lockout = timedelta(seconds=settings.login_lockout_seconds)
        self._limits = {"user": settings.login_max_failures_per_user, "ip": settings.login_max_failures_per_ip}

    async def check(self, keys: list[str]) -> None:
        """Raise RateLimited if any key is locked out."""
        now = utcnow()
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(LoginFailure.key, LoginFailure.locked_until).where(LoginFailure.key.in_(keys))
                )
            ).all()
        for key, locked_until in rows:
            if locked_until is not None and locked_until > now:
                wait = max(1, math.ceil((locked_until - now).total_seconds()))
                what = "this user" if key.startswith("user:") else "this address"
                raise RateLimited(
                    "credentials",
                    f"too many failed logins for {what}; try again in {wait} seconds",
                    retry_after=wait,
                )

    async def failed(self, keys: list[str]) -> None:
        now = utcnow()
        async with self._db.write() as conn:
            for key in keys:
                await insert_ignore(
                    conn, LoginFailure, {"key": key, "failures": 0, "window_start": now, "locked_until": None}
                )
                row = (
                    await conn.execute(
                        select(LoginFailure.failures, LoginFailure.window_start)
                        .where(LoginFailure.key == key)
                        .with_for_update()
                    )
                ).one()
                failures = row.failures + 1
                start = row.window_start
                if now - start > self._window:
                    failures, start = 1, now
                limit = self._limits[key.split(":", 1)[0]]
                locked = now + self._lockout if failures >= limit else None
                await conn.execute(
                    update(LoginFailure)
                    .where(LoginFailure.key == key)
                    .values(
                        failures=0 if locked else failures, window_start=now if locked else start, locked_until=locked
                    )
                )

    async def succeeded(self, username: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(LoginFailure).where(LoginFailure.key == user_key(username)))
