"""Ports for servers on loopback — the benchmark's and the test suite's (``tests/support/ports.py`` re-exports
this): free on 127.0.0.1 when picked, and outside the kernel's ephemeral range.

A port picked by binding port 0 comes from the ephemeral range, the same range from which the kernel gives every
outgoing connection its local port; the suite and the load generators open thousands of client connections, and
one of them can take the port in the moment between the pick and the server's own bind (seen: a server of the
suite's scale-out pass that failed with "Address already in use"). Ports from 10000 up to the start of the
ephemeral range are never handed out that way, so only another server could take one — which the bind at pick
time and a random choice among ~22,000 ports make unlikely.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 10_000  # above the ports services and `make run` (5000) default to
_DEFAULT_EPHEMERAL = (32768, 60999)


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range of ports for outgoing connections (``net.ipv4.ip_local_port_range``)."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return _DEFAULT_EPHEMERAL
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A port nothing listens on now, below the ephemeral range when there is room there (else any free port)."""
    low, _ = ephemeral_range()
    chooser = random.SystemRandom()
    if low - _LOWEST >= 1000:
        for _ in range(100):
            port = chooser.randrange(_LOWEST, low)
            if _bindable(port):
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        found: int = sock.getsockname()[1]
        return found
