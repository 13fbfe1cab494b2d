"""Ending the helper processes tests start (``subprocess.Popen`` or the fork server's ``ForkedProcess``): wait a
while, then kill and reap. Standard library only (the fork server imports it before it preloads anything)."""

from __future__ import annotations

import subprocess
from typing import Protocol


class Process(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


def wait_or_kill(process: Process, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``process`` to exit; if it has not, kill and reap it. True when it exited by
    itself."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def stop(process: Process, timeout: float = 10.0) -> None:
    """Ask ``process`` to stop (SIGTERM); kill it if it has not exited within ``timeout`` s."""
    process.terminate()
    wait_or_kill(process, timeout)
