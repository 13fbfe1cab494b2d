"""Child processes started from the event loop without running any Python code in the child.

``asyncio.create_subprocess_exec`` on uvloop (the server's event loop) forks and then runs Python in the child
before it execs: ``PyOS_AfterFork_Child``, i.e. every at-fork handler (``random`` reseeds itself), pending calls,
maybe a garbage collection. The child has one thread, but it inherits every lock that the parent's other threads
held at the fork, and that Python code can wait on one of them forever: the suite caught a ``git`` child of a
build hung for good in greenlet's thread-state clean-up, a pending call run under ``random``'s reseeding, because
another thread was ending at the moment of the fork. The standard library's ``subprocess`` forks and execs in C
(``_posixsubprocess``) and runs no Python in the child unless asked to (``preexec_fn``, never used here).

``spawn`` starts a child that way and hands its pipes and its exit to the running event loop, whichever loop it
is: the pipes as ``asyncio.StreamReader``\\ s, the exit through a pidfd (``os.pidfd_open``) watched by the loop,
so that waiting holds no thread. ``Child`` offers what callers used of ``asyncio.subprocess.Process``.

The pipes are read by ``_Pipe`` (the loop's ``add_reader``), not through ``loop.connect_read_pipe``: uvloop's pipe
transport closes the descriptor twice at the end — libuv closes it, then uvloop closes the file object it was
given and ignores the EBADF it expects. Between the two, another thread may have been given the same number, and
the second close then closes that thread's file: the suite caught a build's ``git`` child closing a test thread's
SQLite database and event-loop pipe this way. ``_Pipe`` owns its descriptor (a duplicate; ``Popen``'s own is
closed at once) and closes it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

PIPE = subprocess.PIPE
DEVNULL = subprocess.DEVNULL
STDOUT = subprocess.STDOUT
_STREAM_LIMIT = 64 * 1024  # asyncio's default line limit
_READ_SIZE = 64 * 1024


class Child:
    """A running (or ended) child process: its output streams, its exit status once it has ended."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdout: asyncio.StreamReader | None,
        stderr: asyncio.StreamReader | None,
        exited: asyncio.Future[None],
    ) -> None:
        self._popen = popen
        self.stdout = stdout
        self.stderr = stderr
        self._exited = exited

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit status (negative: killed by that signal) once the child has ended, None before."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait for the child to end (a cancelled wait leaves it running) and return its exit status."""
        await asyncio.shield(self._exited)
        return self._popen.wait()  # it has ended: reaps it at once

    async def communicate(self) -> tuple[bytes, bytes]:
        """Read stdout and stderr to their ends (``b""`` for one that is not a pipe), then wait for the exit."""

        async def drain(stream: asyncio.StreamReader | None) -> bytes:
            return b"" if stream is None else await stream.read()

        out, err = await asyncio.gather(drain(self.stdout), drain(self.stderr))
        await self.wait()
        return out, err

    def send_signal(self, sig: int) -> None:
        """Signal the child, unless it has been reaped (then its pid may be someone else's)."""
        self._popen.send_signal(sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Pipe(asyncio.ReadTransport):
    """A child's output pipe, read by the loop into a ``StreamReader`` (which pauses it while its buffer is full)
    until its end; the descriptor is closed once, here (module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int, reader: asyncio.StreamReader) -> None:
        super().__init__()
        self._loop = loop
        self._fd = fd
        self._reader = reader
        self._reading = False
        os.set_blocking(fd, False)
        reader.set_transport(self)
        self.resume_reading()

    def is_reading(self) -> bool:
        return self._reading

    def pause_reading(self) -> None:
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and self._fd >= 0:
            self._loop.add_reader(self._fd, self._read)
            self._reading = True

    def is_closing(self) -> bool:
        return self._fd < 0

    def close(self) -> None:
        if self._fd >= 0:
            self.pause_reading()
            os.close(self._fd)
            self._fd = -1

    def _read(self) -> None:
        try:
            data = os.read(self._fd, _READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self._reader.set_exception(exc)
            return
        if data:
            self._reader.feed_data(data)
        else:
            self.close()
            self._reader.feed_eof()


def _reader(loop: asyncio.AbstractEventLoop, pipe: IO[bytes] | None, limit: int) -> asyncio.StreamReader | None:
    if pipe is None:
        return None
    reader = asyncio.StreamReader(limit=limit, loop=loop)
    fd = os.dup(pipe.fileno())  # non-inheritable, like the original
    pipe.close()  # Popen's file object lets go of its descriptor now, not when it is collected
    _Pipe(loop, fd, reader)
    return reader


def _watch_exit(loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]) -> asyncio.Future[None]:
    """A future done when the child has ended (not yet reaped: ``Popen.poll`` then reaps it, on the loop)."""
    exited: asyncio.Future[None] = loop.create_future()

    def mark(_: object = None) -> None:
        if not exited.done():
            exited.set_result(None)

    try:
        pidfd = os.pidfd_open(popen.pid)
    except OSError:  # no pidfd (Linux before 5.3): a thread waits instead
        loop.run_in_executor(None, popen.wait).add_done_callback(mark)
        return exited

    def ended() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        popen.poll()
        mark()

    loop.add_reader(pidfd, ended)
    return exited


async def spawn(
    argv: Sequence[str],
    *,
    stdin: int | None = DEVNULL,
    stdout: int | None = PIPE,
    stderr: int | None = PIPE,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    start_new_session: bool = False,
    limit: int = _STREAM_LIMIT,
) -> Child:
    """Start ``argv`` (PIPE, DEVNULL, STDOUT or None — inherit — for each stream; stdin cannot be a pipe).
    Raises ``OSError`` (``FileNotFoundError`` for a missing program) as ``subprocess.Popen`` does."""
    if stdin == PIPE:
        raise ValueError("spawn: stdin cannot be a pipe")
    loop = asyncio.get_running_loop()
    # What asyncio's own subprocess transport does on the loop too: a fork (vfork) and exec, no wait.
    popen = subprocess.Popen(  # noqa: ASYNC220
        list(argv),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        env=None if env is None else dict(env),
        cwd=cwd,
        start_new_session=start_new_session,
        bufsize=0,
    )
    try:
        out = _reader(loop, popen.stdout, limit)
        err = _reader(loop, popen.stderr, limit)
        exited = _watch_exit(loop, popen)
    except BaseException:
        with contextlib.suppress(OSError):
            popen.kill()
        popen.wait()
        raise
    return Child(popen, out, err, exited)
