"""Holder names (``dockyard.core.holders``) of processes that have exited, for tests of lease take-overs."""

from __future__ import annotations

import socket
import subprocess

from dockyard.core.holders import MACHINE


def dead_holder() -> str:
    """The holder name a process of this machine would have made, for a process that has exited (and was reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return f"{socket.gethostname()[:32]}:{MACHINE}:{child.pid}:deadbeef"
