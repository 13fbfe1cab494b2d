"""The layer index on a real database of the test backend (SQLite, or PostgreSQL in the scale-out run): one
build per layer digest however many callers race for it, batched rows, failures recorded, a dead builder's claim
taken over, and a 50,000-file layer in one streaming pass."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select, update

from dockyard.db.engine import Database
from dockyard.errors import Invalid, NotFound
from dockyard.layers.index import READY, LayerIndexer
from dockyard.models import Blob, LayerFile, LayerIndex
from dockyard.models.base import utcnow
from tests.support.blobstore import digest_of
from tests.support.holders import dead_holder
from tests.support.jobs import new_database
from tests.support.layers import E, chunked, layer


class FakeBlobs:
    """What the indexer needs of ``BlobService``: ``stream``. Counts reads."""

    def __init__(self) -> None:
        self.content: dict[str, bytes] = {}
        self.reads = 0

    async def stream(self, digest: str) -> AsyncIterator[bytes]:
        self.reads += 1
        if digest not in self.content:
            raise NotFound("blob", "blob content is missing from storage", {"digest": digest})
        async for chunk in chunked(self.content[digest], 64 * 1024):
            await asyncio.sleep(0)
            yield chunk


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with new_database(tmp_path) as database:
        yield database


async def stored(db: Database, blobs: FakeBlobs, data: bytes) -> str:
    digest = digest_of(data)
    blobs.content[digest] = data
    async with db.write() as conn:
        await conn.execute(insert(Blob).values(digest=digest, size=len(data), created_at=utcnow()))
    return digest


async def count_rows(db: Database, digest: str) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.execute(select(func.count()).select_from(LayerFile).where(LayerFile.layer_digest == digest))
            ).scalar_one()
        )


async def test_builds_once_and_a_second_call_is_a_lookup(db: Database) -> None:
    blobs = FakeBlobs()
    digest = await stored(db, blobs, layer([E("etc/hello", data=b"hi"), E("etc/.wh.old")]))
    indexer = LayerIndexer(db, blobs, batch=2)  # type: ignore[arg-type]

    state = await indexer.ensure(digest)
    again = await indexer.ensure(digest)

    assert (state.state, state.entries, again.state) == (READY, 2, READY)
    assert blobs.reads == 1
    assert await count_rows(db, digest) == 3  # with the implicit "etc"


async def test_concurrent_builders_of_one_layer_write_it_once(db: Database) -> None:
    blobs = FakeBlobs()
    digest = await stored(db, blobs, layer([E(f"d{i % 7}/f{i}", data=str(i).encode()) for i in range(3000)], "zstd"))
    # Separate indexers stand for separate processes (one process shares one build in memory).
    indexers = [LayerIndexer(db, blobs, batch=250, poll_seconds=0.02) for _ in range(4)]  # type: ignore[arg-type]

    states = await asyncio.gather(
        *(ix.ensure(digest) for ix in indexers), *(indexers[0].ensure(digest) for _ in range(3))
    )

    assert {s.state for s in states} == {READY}
    assert blobs.reads == 1
    assert await count_rows(db, digest) == 3000 + 7
    async with db.read() as conn:
        assert (await conn.execute(select(func.count()).select_from(LayerIndex))).scalar_one() == 1


async def test_an_unreadable_layer_is_recorded_as_failed(db: Database) -> None:
    blobs = FakeBlobs()
    digest = await stored(db, blobs, b"\x1f\x8b" + b"garbage" * 100)
    indexer = LayerIndexer(db, blobs)  # type: ignore[arg-type]

    with pytest.raises(Invalid) as first:
        await indexer.ensure(digest)
    with pytest.raises(Invalid):
        await indexer.ensure(digest)

    assert first.value.subject == "layer"
    assert blobs.reads == 1  # the failure is remembered: content-addressed, it will never read better
    state = await indexer.state(digest)
    assert state is not None
    assert state.state == "failed"
    assert state.error


async def test_missing_content_releases_the_claim(db: Database) -> None:
    blobs = FakeBlobs()
    data = layer([E("a", data=b"1")])
    digest = await stored(db, blobs, data)
    del blobs.content[digest]
    indexer = LayerIndexer(db, blobs)  # type: ignore[arg-type]

    with pytest.raises(NotFound):
        await indexer.ensure(digest)
    assert await indexer.state(digest) is None
    blobs.content[digest] = data
    assert (await indexer.ensure(digest)).state == READY


async def test_a_dead_builders_claim_is_taken_over(db: Database) -> None:
    blobs = FakeBlobs()
    digest = await stored(db, blobs, layer([E("a", data=b"1"), E("b", data=b"2")]))
    async with db.write() as conn:  # a builder that died after its claim and some rows
        await conn.execute(
            insert(LayerIndex).values(
                digest=digest, state="building", builder="dead", heartbeat_at=utcnow(), created_at=utcnow()
            )
        )
    indexer = LayerIndexer(db, blobs, stale_after=0.5, poll_seconds=0.05)  # type: ignore[arg-type]
    waiting = asyncio.create_task(indexer.ensure(digest))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # a live-looking claim is waited for
    async with db.write() as conn:
        await conn.execute(
            update(LayerIndex).values(heartbeat_at=utcnow() - timedelta(seconds=5)).where(LayerIndex.digest == digest)
        )

    state = await asyncio.wait_for(waiting, 10)

    assert (state.state, state.entries) == (READY, 2)


async def test_a_builder_that_died_on_this_machine_is_not_waited_for(db: Database) -> None:
    blobs = FakeBlobs()
    digest = await stored(db, blobs, layer([E("a", data=b"1")]))
    async with db.write() as conn:  # claimed a moment ago by a process that has exited since
        await conn.execute(
            insert(LayerIndex).values(
                digest=digest, state="building", builder=dead_holder(), heartbeat_at=utcnow(), created_at=utcnow()
            )
        )
    indexer = LayerIndexer(db, blobs, stale_after=600, poll_seconds=0.05)  # type: ignore[arg-type]

    state = await asyncio.wait_for(indexer.ensure(digest), 10)

    assert (state.state, state.entries) == (READY, 1)


async def test_a_layer_of_50000_files_indexes_in_one_pass(db: Database) -> None:
    blobs = FakeBlobs()
    entries = [E(f"usr/share/d{i // 500}/f{i}", data=b"x" * (i % 50)) for i in range(50_000)]
    digest = await stored(db, blobs, layer(entries))
    indexer = LayerIndexer(db, blobs)  # type: ignore[arg-type]

    started = time.monotonic()
    state = await indexer.ensure(digest)
    took = time.monotonic() - started

    assert state.entries == 50_000
    assert blobs.reads == 1
    assert await count_rows(db, digest) == 50_000 + 2 + 100
    assert took < 60, took
