"""Docker Hub's pull rate limits: manifest GETs counted per account (authenticated) or per client address
(anonymous) in fixed windows of ``rate_limit_window_seconds``, shared by every replica through the DB.

The hot path (``take``) is synchronous, O(1) and does no I/O: it decides from this process's view of the subject's
count — the total the DB held at the last flush (``shared``), plus what this process counted since (``pending``,
and ``inflight`` while a flush writes it). ``flush`` (every ``rate_limit_flush_seconds``, ~1 s, by ``run``) adds
the pending counts to ``pull_rate_counts`` with one upsert per subject in one write transaction, then reads the
totals of the subjects this process has seen in the current window, which brings in the other replicas' counts.
So a pull adds no write transaction; a process adds at most one per second, and none while nobody pulls.

The slack (docs/lifecycle.md): a replica does not see another's pulls until that one has flushed and it has read
them, up to about two flush intervals later. With R replicas, a client spreading its pulls over all of them can
exceed its limit by at most what it pulls from the other R − 1 replicas in that time; on one replica the count is
exact. A crash loses the counts of at most one interval (in the client's favour).

Who is counted: an authenticated account by its id; anonymous callers (and every caller of an ``--open`` server) by
their address as ``http.proxies`` resolved it behind trusted proxies — an IPv6 client by its /64, as Docker Hub
does, since one host usually holds a whole /64. An account's limit is ``rate_limit_authenticated`` unless one of
its organizations (``rate_limit_organizations``; a robot's is its owner) grants more; robots listed in
``rate_limit_unlimited_robots`` and a limit of 0 are unlimited: no counting and no headers. Memberships are
re-read every ``OVERRIDE_FLUSHES`` flushes (30 s by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.authz.principal import Principal
from dockyard.db.engine import Database
from dockyard.db.statements import dialect_insert
from dockyard.models import Account, OrgMember, PullRateCount
from dockyard.models.accounts import ORG, ROBOT
from dockyard.settings import Settings

log = logging.getLogger(__name__)

MAX_SUBJECTS = 100_000
OVERRIDE_FLUSHES = 30
_READ_CHUNK = 500

Key = tuple[str, int]  # (subject, window start)


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs twice as much, on every pull
class Decision:
    """What ``take`` decided for one request. ``limit`` None: unlimited (no headers)."""

    allowed: bool
    limit: int | None = None
    remaining: int = 0
    window: int = 0
    source: str = ""
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        """Docker Hub's headers: ``ratelimit-limit: 100;w=21600``, ``ratelimit-remaining: 76;w=21600``,
        ``docker-ratelimit-source``."""
        if self.limit is None:
            return {}
        return {
            "ratelimit-limit": f"{self.limit};w={self.window}",
            "ratelimit-remaining": f"{self.remaining};w={self.window}",
            "docker-ratelimit-source": self.source,
        }


UNLIMITED = Decision(True)


@lru_cache(maxsize=65_536)  # parsing costs more than the rest of a decision; clients come back
def address_subject(address: str) -> str:
    """The anonymous subject of a client address: an IPv4 address as is, an IPv6 address by its /64."""
    try:
        parsed = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return address[:64]
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


class PullRateLimiter:
    """One per process; ``take`` on the hot path, ``run`` in the background."""

    def __init__(self, db: Database, settings: Settings, *, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.settings = settings
        self.window = settings.rate_limit_window_seconds
        self.clock = clock
        self.dropped = 0
        self._pending: dict[Key, int] = {}
        self._inflight: dict[Key, int] = {}
        self._shared: dict[Key, int] = {}
        self._seen: dict[str, int] = {}  # subject → the window it was last seen in
        self._accounts: dict[int, int] = {}  # account id → its limit when it differs from the default
        self._overrides_at = -math.inf
        self._last_cleanup = -1
        self._lock = asyncio.Lock()

    @staticmethod
    def enabled(settings: Settings) -> bool:
        return bool(settings.rate_limit_anonymous or settings.rate_limit_authenticated)

    def _limit(self, principal: Principal) -> int:
        if principal.is_authenticated and principal.account_id is not None:
            return self._accounts.get(principal.account_id, self.settings.rate_limit_authenticated)
        return self.settings.rate_limit_anonymous

    def take(self, principal: Principal, address: str, *, count: bool) -> Decision:
        """Decide on a manifest request and, when ``count`` (a GET) and allowed, count it. Never raises."""
        limit = self._limit(principal)
        if limit <= 0:
            return UNLIMITED
        if principal.is_authenticated and principal.account_id is not None:
            subject, source = f"account:{principal.account_id}", principal.name
        else:
            source = address_subject(address)
            subject = f"ip:{source}"
        now = self.clock()
        start = int(now // self.window) * self.window
        key = (subject, start)
        used = self._shared.get(key, 0) + self._inflight.get(key, 0) + self._pending.get(key, 0)
        if subject not in self._seen and len(self._seen) >= MAX_SUBJECTS:
            self.dropped += 1  # memory bound: a new subject past it is decided on this process's counts only
        else:
            self._seen[subject] = start
        if used >= limit:
            if not count:
                return Decision(True, limit, 0, self.window, source)
            retry = max(1, math.ceil(start + self.window - now))
            return Decision(False, limit, 0, self.window, source, retry)
        if count:
            self._pending[key] = self._pending.get(key, 0) + 1
            used += 1
        return Decision(True, limit, limit - used, self.window, source)

    # -- background -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Flush every ``rate_limit_flush_seconds`` until cancelled; then flush once more."""
        try:
            while True:
                await self.flush()
                await asyncio.sleep(self.settings.rate_limit_flush_seconds)
        finally:
            with contextlib.suppress(Exception):
                await self.flush()

    async def flush(self) -> None:
        """Write this process's counts, read everyone's for the subjects seen in this window, and now and then
        re-read the organizations' overrides and delete past windows. Never raises (a failed write keeps its
        counts for the next flush)."""
        await asyncio.shield(self._flush())

    async def _flush(self) -> None:
        async with self._lock:
            now = self.clock()
            start = int(now // self.window) * self.window
            batch, self._pending = self._pending, {}
            self._inflight = batch
            try:
                if batch:
                    await self.db.run_write(lambda conn: _add(conn, batch, cleanup=self._cleanup_due(start)))
            except Exception:
                log.warning("could not write pull rate counts; keeping them for the next try", exc_info=True)
                for key, n in batch.items():
                    self._pending[key] = self._pending.get(key, 0) + n
                self._inflight = {}
                return
            try:
                self._seen = {subject: seen for subject, seen in self._seen.items() if seen == start}
                shared = await self._read(start, list(self._seen))
                if now - self._overrides_at >= OVERRIDE_FLUSHES * self.settings.rate_limit_flush_seconds:
                    self._accounts = await self._load_overrides()
                    self._overrides_at = now
            except Exception:
                log.warning("could not read pull rate counts; counting on this process's view", exc_info=True)
                shared = dict(self._shared)
                for key, n in batch.items():
                    shared[key] = shared.get(key, 0) + n
            self._shared, self._inflight = shared, {}

    def _cleanup_due(self, start: int) -> int | None:
        """The window before which rows are deleted, once per window per process."""
        if self._last_cleanup == start:
            return None
        self._last_cleanup = start
        return start - self.window

    async def _read(self, start: int, subjects: list[str]) -> dict[Key, int]:
        out: dict[Key, int] = {}
        if not subjects:
            return out
        async with self.db.read() as conn:
            for offset in range(0, len(subjects), _READ_CHUNK):
                chunk = subjects[offset : offset + _READ_CHUNK]
                rows = await conn.execute(
                    select(PullRateCount.subject, PullRateCount.count).where(
                        PullRateCount.window_start == start, PullRateCount.subject.in_(chunk)
                    )
                )
                out.update({(subject, start): int(count) for subject, count in rows})
        return out

    async def _load_overrides(self) -> dict[int, int]:
        """Account id → limit, for the members and robots of the organizations with an override and for the
        unlimited robots; only where it is more generous than the default."""
        default = self.settings.rate_limit_authenticated
        overrides = self.settings.rate_limit_overrides
        accounts: dict[int, int] = {}

        def grant(account_id: int, limit: int) -> None:
            current = accounts.get(account_id, default)
            if current == 0 or limit == 0:
                accounts[account_id] = 0
            else:
                accounts[account_id] = max(current, limit)

        async with self.db.read(consistent=True) as conn:
            if overrides:
                orgs = {
                    int(org_id): overrides[name]
                    for org_id, name in await conn.execute(
                        select(Account.id, Account.name).where(Account.kind == ORG, Account.name.in_(list(overrides)))
                    )
                }
                if orgs:
                    members = await conn.execute(
                        select(OrgMember.user_id, OrgMember.org_id).where(OrgMember.org_id.in_(list(orgs)))
                    )
                    robots = await conn.execute(
                        select(Account.id, Account.owner_id).where(
                            Account.kind == ROBOT, Account.owner_id.in_(list(orgs))
                        )
                    )
                    for account_id, org_id in [*members, *robots]:
                        grant(int(account_id), orgs[int(org_id)])
            if self.settings.rate_limit_unlimited_robots:
                for (robot_id,) in await conn.execute(
                    select(Account.id).where(
                        Account.kind == ROBOT, Account.name.in_(self.settings.rate_limit_unlimited_robots)
                    )
                ):
                    accounts[int(robot_id)] = 0
        return {account_id: limit for account_id, limit in accounts.items() if limit != default}


async def _add(conn: AsyncConnection, batch: dict[Key, int], *, cleanup: int | None) -> None:
    """Add the batch's counts (one upsert per subject, in key order so that replicas never deadlock)."""
    insert = dialect_insert(conn)
    statement = insert(PullRateCount).values(
        subject=bindparam("b_subject"), window_start=bindparam("b_start"), count=bindparam("b_count")
    )
    statement = statement.on_conflict_do_update(
        index_elements=[PullRateCount.subject, PullRateCount.window_start],
        set_={"count": PullRateCount.count + statement.excluded.count},
    )
    rows = [{"b_subject": subject, "b_start": start, "b_count": n} for (subject, start), n in sorted(batch.items())]
    await conn.execute(statement, rows)
    if cleanup is not None:
        await conn.execute(delete(PullRateCount).where(PullRateCount.window_start < cleanup))
