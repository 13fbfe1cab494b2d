"""The thread bridge: a blocking reader over an async stream gets every byte, holds only a few chunks at a time,
stops cleanly when the consumer goes away, and a failure of the stream reaches the consumer as itself."""

from __future__ import annotations

import asyncio
import contextlib
import io
import threading
from collections.abc import AsyncIterator, Iterator
from typing import IO

import pytest

from dockyard.layers.bridge import through_thread
from dockyard.layers.tarstream import member_content, scan
from tests.support.layers import E, chunked, layer


def read_all(raw: IO[bytes]) -> Iterator[bytes]:
    while chunk := raw.read(10_000):
        yield chunk


async def test_every_byte_arrives_in_order() -> None:
    data = bytes(range(256)) * 4000
    got = b"".join([c async for c in through_thread(chunked(data), read_all)])
    assert got == data


async def test_memory_stays_bounded_by_the_queue() -> None:
    produced = 0
    consumed_ahead: list[int] = []

    async def source() -> AsyncIterator[bytes]:
        nonlocal produced
        for _ in range(200):
            produced += 1
            yield b"x" * 65536

    def slow(raw: IO[bytes]) -> Iterator[int]:
        while raw.read(65536):
            yield 1

    count = 0
    async for _ in through_thread(source(), slow, depth=4):
        count += 1
        consumed_ahead.append(produced - count)
    # The pump never runs more than the queue depth (plus the reader's buffer and one in flight) ahead.
    assert max(consumed_ahead) <= 8


async def test_a_consumer_that_goes_away_releases_the_blocked_reader_thread() -> None:
    async def stalling() -> AsyncIterator[bytes]:
        yield b"z" * 10
        await asyncio.Event().wait()  # storage that never sends more

    released = threading.Event()

    def work(raw: IO[bytes]) -> Iterator[int]:
        try:
            while raw.read(100):
                yield 1
        except OSError:
            released.set()
            raise

    async def consume() -> None:
        async for _ in through_thread(stalling(), work):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.3)  # the worker thread now waits for a chunk that will never come
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(released.wait, 5)


async def test_more_streams_than_the_default_executor_has_threads_all_finish() -> None:
    """Each chunk is read through the default executor, as the filesystem store reads a blob: readers that held
    its threads while they waited for a chunk left no thread to read one."""
    data = bytes(range(256)) * 400

    def read_chunk(at: int) -> bytes:
        return data[at : at + 4096]

    async def from_threads() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 4096):
            yield await asyncio.to_thread(read_chunk, start)

    async def one() -> bytes:
        return b"".join([chunk async for chunk in through_thread(from_threads(), read_all, depth=1)])

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(one() for _ in range(40)))  # the default executor has at most 32 threads
    assert results == [data] * 40


async def test_a_stream_failure_is_raised_as_itself() -> None:
    class Boom(Exception):
        pass

    async def failing() -> AsyncIterator[bytes]:
        yield layer([E("a", data=b"1" * 100_000)], "none")[:1024]
        raise Boom("storage went away")

    with pytest.raises(Boom):
        async for _ in through_thread(failing(), lambda raw: scan(raw)):
            pass


async def test_reads_a_member_of_a_layer_streamed_in_small_chunks() -> None:
    data = layer([E("a", data=b"A" * 300_000), E("b", data=b"B" * 5)], "gzip")
    entries = list(scan(io.BytesIO(data)))
    member = next(e.member for e in entries if e.path == "b")
    got = b"".join([c async for c in through_thread(chunked(data, 999), lambda raw: member_content(raw, member))])
    assert got == b"B" * 5
