"""Keeps libraries that a server process imports but never uses out of it (standard library only, so that it can
run before them): ``skip_unused_imports()`` is called by ``dockyard serve`` and each server worker before they
import uvicorn, httpx or the application.

Both libraries import an optional part when it is installed and fall back when it cannot be imported, which a
``None`` entry in ``sys.modules`` makes it:

- ``import httpx`` imports its command-line client (click, rich and pygments: ~4.5 MiB and ~0.1 s per process)
  whenever those are installed; the server never runs the ``httpx`` command;
- ``import uvicorn`` imports its ``--reload`` supervisor built on watchfiles (~2.5 MiB with its Rust extension);
  Dockyard never reloads on code changes (uvicorn falls back to its polling reloader, also unused).
"""

from __future__ import annotations

import sys

UNUSED_MODULES = ("httpx._main", "uvicorn.supervisors.watchfilesreload")


def skip_unused_imports() -> None:
    """Mark ``UNUSED_MODULES`` as not importable, unless this process has imported them (or their package)."""
    for name in UNUSED_MODULES:
        if name.partition(".")[0] not in sys.modules:
            sys.modules.setdefault(name, None)  # type: ignore[arg-type]
