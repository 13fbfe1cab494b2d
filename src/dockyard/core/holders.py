"""Names for the holders of leases (a job's, a layer index build's, a proxy fetch's) that say whose they are, so
that a holder known to be dead need not be waited for.

A lease normally ends by time: its holder renews it while it works, and a holder that stops renewing is presumed
dead once the lease runs out (a minute, by default). After ``kill -9`` or a power cut the restarted server would
wait that long for its own predecessor's work. A holder name made here is ``host:machine:pid:random``, where
``machine`` identifies this boot of this machine and this PID namespace; ``is_dead(name)`` is True only for a
name made on the same machine and PID namespace whose process no longer exists: then the lease can be taken over
at once. Anything else (another machine or container, a process that is alive — or a new process that reused
the PID —, a name in another format) is not known dead, and its lease runs out by time as before.
"""

from __future__ import annotations

import hashlib
import os
import socket
import uuid


def _machine() -> str:
    """This boot of this machine and this PID namespace, in 10 hex digits (random if it cannot be told)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return uuid.uuid4().hex[:10]  # no /proc: never equal to another process's, so no one is known dead
    return hashlib.sha256(f"{boot}:{namespace}".encode()).hexdigest()[:10]


MACHINE = _machine()


def new_holder() -> str:
    """A holder name for this process, unique to the call (at most 64 characters)."""
    return f"{socket.gethostname()[:32]}:{MACHINE}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_short_holder() -> str:
    """A holder name without the host, for a column of 32 characters (an upload's lease token)."""
    return f"-:{MACHINE}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead(holder: str | None) -> bool:
    """Whether ``holder`` was made by a process of this machine and PID namespace that has exited."""
    if not holder:
        return False
    parts = holder.rsplit(":", 3)
    if len(parts) != 4 or parts[1] != MACHINE or not parts[2].isdigit():
        return False
    pid = int(parts[2])
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # it exists (another user's: EPERM)
        return False
    return False
