"""Running a blocking stream reader (``tarfile``, gzip, zstd) in a worker thread over an async blob stream.

``through_thread(chunks, work)`` pumps the blob's chunks into a bounded queue from the event loop; ``work`` gets a
file-like object whose ``read`` takes chunks from that queue (blocking its worker thread, never the loop) and
returns an iterator, whose items come back to the caller as an async iterator, one thread hop per item. Memory is
bounded by ``depth`` chunks in the queue plus what the reader buffers; the blob is never held whole.

If the consumer stops early (an error, a client gone), the pump is cancelled and the reader is told to give up
(``StreamAborted``), so no worker thread is left waiting for a chunk that will never come. A storage error met
by the pump is raised to the consumer as itself, not as whatever the reader made of it.

The readers run in threads of their own (``READER_THREADS`` per process), not in the loop's default executor: a
reader blocks its thread until the pump brings a chunk, and the pump reads the blob through that default executor
(``asyncio.to_thread`` in the filesystem store). Readers there could hold all of its threads — a few layer scans
and file views at once — and wait for reads that no thread was left to run, which stopped every ``to_thread``
user of the process with them. Streams beyond ``READER_THREADS`` wait their turn, holding no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TypeVar, cast

T = TypeVar("T")

DEFAULT_DEPTH = 4
READER_THREADS = 4

_readers: tuple[int, ThreadPoolExecutor] | None = None  # (the process it belongs to, the executor)


def _reader_threads() -> ThreadPoolExecutor:
    """This process's executor for readers (made on first use, and again in a forked child)."""
    global _readers
    if _readers is None or _readers[0] != os.getpid():
        _readers = (os.getpid(), ThreadPoolExecutor(READER_THREADS, thread_name_prefix="dockyard-reader"))
    return _readers[1]


class StreamAborted(OSError):
    """The consumer went away, or the blob stream failed: the reader must stop."""


class _End:
    pass


_EOF = _End()
_ABORT = _End()


class _QueueReader(io.RawIOBase):
    """A raw binary reader over chunks put into an asyncio queue of ``loop`` (read from another thread)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | _End]) -> None:
        self._loop = loop
        self._queue = queue
        self._chunk = memoryview(b"")
        self._done = False
        self._aborted = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._chunk:
            if self._aborted:
                raise StreamAborted("the layer stream was abandoned")
            if self._done:
                return 0
            item = asyncio.run_coroutine_threadsafe(self._queue.get(), self._loop).result()
            if item is _EOF:
                self._done = True
            elif item is _ABORT:
                self._aborted = True
            else:
                self._chunk = memoryview(cast(bytes, item))
        n = min(len(buffer), len(self._chunk))
        buffer[:n] = self._chunk[:n]
        self._chunk = self._chunk[n:]
        return n


_NOTHING = object()


def _next(iterator: Iterator[T]) -> T | object:
    return next(iterator, _NOTHING)


async def through_thread(
    chunks: AsyncIterator[bytes], work: Callable[[IO[bytes]], Iterator[T]], *, depth: int = DEFAULT_DEPTH
) -> AsyncGenerator[T, None]:
    """The items of ``work(reader)`` computed in a worker thread, where ``reader`` reads ``chunks``. Exceptions
    of ``work`` propagate; an exception of ``chunks`` propagates as itself."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | _End] = asyncio.Queue(maxsize=depth)
    failure: list[BaseException] = []

    async def pump() -> None:
        try:
            async for chunk in chunks:
                if chunk:
                    await queue.put(chunk)
            await queue.put(_EOF)
        except Exception as exc:  # handed to the consumer below; the reader is told to stop
            failure.append(exc)
            _abort(queue)

    pumping = asyncio.create_task(pump(), name="layers.pump")
    reader = io.BufferedReader(_QueueReader(loop, queue), 64 * 1024)
    try:
        iterator = work(cast("IO[bytes]", reader))
        while True:
            try:
                item = await loop.run_in_executor(_reader_threads(), _next, iterator)
            except Exception:
                if failure:
                    raise failure[0] from None
                raise
            if item is _NOTHING:
                return
            yield cast(T, item)
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        _abort(queue)


def _abort(queue: asyncio.Queue[bytes | _End]) -> None:
    """Make the reader's next wait end with ``StreamAborted`` (no one will put chunks any more)."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(_ABORT)
