"""One server worker process of ``dockyard serve`` (``python -m dockyard.cli.server_worker LISTEN_FD CONTROL_FD``,
started by ``dockyard.cli.supervisor``): serves the application on the inherited listening socket, and answers the
supervisor's pings on the control socket from a thread of its own — ``1`` once the server has started, ``0``
before — so that a hung worker is noticed and replaced.

The settings come serialized from ``dockyard serve`` in the environment (``dockyard.settings.load_serialized``);
the database is already migrated and the first-start key and administrator exist.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Callable

import uvicorn

from dockyard.cli.supervisor import STARTED, STARTING


def _answer_pings(control: socket.socket, started: Callable[[], bool]) -> None:
    with contextlib.suppress(OSError):
        while control.recv(64):
            control.send(STARTED if started() else STARTING)


def main(argv: list[str]) -> None:
    listen_fd, control_fd = (int(value) for value in argv)
    control = socket.socket(fileno=control_fd)
    servers: list[uvicorn.Server] = []
    # Answered from the first moment: importing the application takes seconds on a loaded machine.
    threading.Thread(
        target=_answer_pings,
        args=(control, lambda: bool(servers) and servers[0].started),
        name="supervisor-pings",
        daemon=True,
    ).start()

    from dockyard.app import app_from_environment
    from dockyard.cli.serve import uvicorn_config

    listener = socket.socket(fileno=listen_fd)
    app = app_from_environment()
    servers.append(uvicorn.Server(uvicorn_config(app.state.settings, app)))
    servers[0].run(sockets=[listener])


if __name__ == "__main__":
    main(sys.argv[1:])
