"""``dockyard_cli``: run a ``dockyard`` command as the operator would on the server's host — ``python -m
dockyard.cli.main …`` in a process of its own, with exactly the environment given, from the repository root, stdout
and stderr captured apart as text. The process is forked from the test process's fork server when it is enabled
(``tests/support/forkserver.py``: the CLI's imports made once), a new interpreter otherwise."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping

from tests.support import forkserver
from tests.support.server import REPO_ROOT


def dockyard_cli(
    *args: str, env: Mapping[str, str], input: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``dockyard *args`` to its end (whatever its exit status: the caller checks ``returncode``)."""
    if forkserver.enabled():
        return forkserver.shared(REPO_ROOT).run(list(args), env=dict(env), cwd=REPO_ROOT, input=input, timeout=timeout)
    return subprocess.run(
        forkserver.command(list(args)),
        input=input,
        env=dict(env),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
