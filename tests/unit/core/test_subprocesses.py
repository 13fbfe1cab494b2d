"""``dockyard.core.subprocesses``: children whose output and exit reach the event loop — asyncio's or uvloop's —
and in which no Python code runs between the fork and the exec."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import uvloop

from dockyard.core.subprocesses import DEVNULL, PIPE, STDOUT, spawn

T = TypeVar("T")
LOOPS = ["asyncio", "uvloop"]


def run(kind: str, main: Callable[[], Awaitable[T]]) -> T:
    async def wrapped() -> T:
        return await main()

    if kind == "uvloop":
        return uvloop.run(wrapped())
    return asyncio.run(wrapped())


@pytest.mark.parametrize("kind", LOOPS)
def test_output_of_both_streams_and_the_exit_status(kind: str) -> None:
    async def main() -> tuple[bytes, bytes, int | None]:
        child = await spawn(["sh", "-c", "echo out; echo err >&2; exit 3"])
        out, err = await child.communicate()
        return out, err, child.returncode

    assert run(kind, main) == (b"out\n", b"err\n", 3)


@pytest.mark.parametrize("kind", LOOPS)
def test_stderr_into_stdout_read_by_lines_in_the_given_environment_and_directory(kind: str, tmp_path: Path) -> None:
    async def main() -> tuple[list[bytes], int]:
        child = await spawn(
            ["sh", "-c", 'echo "$GREETING"; pwd >&2; echo last'],
            stdout=PIPE,
            stderr=STDOUT,
            env={"GREETING": "hello", "PATH": "/usr/bin:/bin"},
            cwd=tmp_path,
        )
        assert child.stdout is not None
        assert child.stderr is None
        lines = [line async for line in child.stdout]
        return lines, await child.wait()

    assert run(kind, main) == ([b"hello\n", f"{tmp_path}\n".encode(), b"last\n"], 0)


@pytest.mark.parametrize("kind", LOOPS)
def test_a_killed_child_reports_the_signal_and_a_cancelled_wait_leaves_it_running(kind: str) -> None:
    async def main() -> tuple[int | None, int]:
        child = await spawn(["sleep", "30"], stdout=DEVNULL, stderr=DEVNULL, start_new_session=True)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(child.wait(), 0.2)
        still = child.returncode
        assert os.getpgid(child.pid) == child.pid  # a session (and process group) of its own
        child.kill()
        return still, await child.wait()

    assert run(kind, main) == (None, -signal.SIGKILL)


def test_a_missing_program_raises_as_popen_does() -> None:
    async def main() -> None:
        await spawn(["/nonexistent/program"])

    with pytest.raises(FileNotFoundError):
        asyncio.run(main())


def test_stdin_cannot_be_a_pipe() -> None:
    async def main() -> None:
        await spawn(["true"], stdin=PIPE)

    with pytest.raises(ValueError, match="stdin"):
        asyncio.run(main())


# -- no Python in the child --------------------------------------------------------------------------------------

_armed: list[str] = []  # while a test holds a path here, every forked child that runs Python appends its pid to it


def _after_fork_in_child() -> None:
    if _armed:
        with open(_armed[0], "a") as marks:
            marks.write(f"{os.getpid()}\n")


os.register_at_fork(after_in_child=_after_fork_in_child)


@pytest.fixture
def python_in_children(tmp_path: Path) -> Iterator[Path]:
    """A file that lists the children in which Python's at-fork handlers ran."""
    marks = tmp_path / "ran-python"
    marks.touch()
    _armed.append(str(marks))
    try:
        yield marks
    finally:
        _armed.clear()


@pytest.mark.parametrize("kind", LOOPS)
def test_no_python_runs_in_the_child(kind: str, python_in_children: Path) -> None:
    async def main() -> int:
        child = await spawn(["true"])
        await child.communicate()
        return child.pid

    run(kind, main)
    assert python_in_children.read_text() == ""


def test_uvloops_own_subprocesses_do_run_python_in_the_child(python_in_children: Path) -> None:
    """What the module is for: the at-fork handlers run in a child of ``asyncio.create_subprocess_exec`` on uvloop
    (where a lock held by another thread at the fork can hang the child before its exec)."""

    async def main() -> int:
        child = await asyncio.create_subprocess_exec("true")
        await child.wait()
        return child.pid

    pid = run("uvloop", main)
    assert python_in_children.read_text() == f"{pid}\n"


@pytest.mark.parametrize("kind", LOOPS)
def test_without_pidfds_a_thread_waits_for_the_exit(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Linux before 5.3 has no ``pidfd_open``: the exit is then awaited in a thread of the loop's executor."""

    def no_pidfd(pid: int, flags: int = 0) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)

    async def main() -> tuple[bytes, int]:
        child = await spawn(["sh", "-c", "sleep 0.2; echo done; exit 4"])
        out, _ = await child.communicate()
        return out, await child.wait()

    assert run(kind, main) == (b"done\n", 4)


# -- each pipe closed once ---------------------------------------------------------------------------------------

_CHILDREN = """
import asyncio, sys
import uvloop
from dockyard.core.subprocesses import STDOUT, spawn

async def main():
    for _ in range(3):
        child = await spawn(["sh", "-c", "echo out; echo err >&2"])
        assert await child.communicate() == (b"out\\n", b"err\\n")
        child = await spawn(["seq", "1", "20000"], stderr=STDOUT)
        assert child.stdout is not None
        assert len([line async for line in child.stdout]) == 20000
        await child.wait()

(uvloop.run if sys.argv[1] == "uvloop" else asyncio.run)(main())
"""


@pytest.mark.parametrize("kind", LOOPS)
def test_each_pipe_is_closed_once(kind: str, tmp_path: Path) -> None:
    """uvloop's ``connect_read_pipe`` transport closed a pipe's descriptor twice (libuv, then the file object): a
    thread that opened a file between the two lost it. Counted with strace: no ``close`` fails with EBADF."""
    import subprocess
    import sys

    from tests.support.tools import require_tool

    strace = require_tool("strace")
    script = tmp_path / "children.py"
    script.write_text(_CHILDREN)
    trace = tmp_path / "trace"
    run_ = subprocess.run(
        [strace, "-f", "-e", "trace=close", "-o", str(trace), sys.executable, str(script), kind],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run_.returncode == 0, run_.stderr[-2000:]
    closes = trace.read_text().splitlines()
    assert len(closes) > 100  # the trace recorded the program's closes (the interpreter's and the children's)
    assert [line for line in closes if "EBADF" in line] == []


@pytest.mark.parametrize("kind", LOOPS)
def test_output_waits_in_the_pipe_while_nobody_reads(kind: str) -> None:
    """A reader that falls behind (the pipe is paused once the reader's buffer is full, then resumed): nothing of a
    4 MiB output is lost."""

    async def main() -> bytes:
        child = await spawn(["head", "-c", str(4 * 1024 * 1024), "/dev/urandom"], limit=64 * 1024)
        await asyncio.sleep(0.3)  # the child fills the pipe; the reader takes ~128 KiB and pauses
        assert child.stdout is not None
        data = await child.stdout.read()
        assert await child.wait() == 0
        return data

    assert len(run(kind, main)) == 4 * 1024 * 1024
