"""One server worker process of ``dockyard serve`` (``python -m dockyard.cli.server_worker LISTEN_FD CONTROL_FD``,
started by ``dockyard.cli.supervisor``): prepares the database (migrations and the first start, as replicas
starting together do: safe side by side with the other workers), then serves the application on the inherited
listening socket. It answers the supervisor's pings on the control socket from a thread of its own — ``1`` once the
server has started, ``0`` before — so that a hung worker is noticed and replaced.

The settings come serialized from ``dockyard serve`` in the environment (``dockyard.settings.load_serialized``),
the secret key already resolved. A worker that cannot prepare or start exits with status 3, which stops the
server (``dockyard.cli.supervisor``): a replacement would fail the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from dockyard.cli.lean_imports import skip_unused_imports
from dockyard.cli.supervisor import STARTED, STARTING, STARTUP_FAILURE

if TYPE_CHECKING:
    from dockyard.app import DockyardApp


def _answer_pings(control: socket.socket, started: Callable[[], bool]) -> None:
    with contextlib.suppress(OSError):
        while control.recv(64):
            control.send(STARTED if started() else STARTING)


def main(argv: list[str]) -> None:
    listen_fd, control_fd = (int(value) for value in argv)
    skip_unused_imports()  # before uvicorn, httpx and the application are imported
    import uvicorn

    from dockyard.cli.serve import built_then_frozen, uvicorn_config

    control = socket.socket(fileno=control_fd)
    servers: list[uvicorn.Server] = []
    # Answered from the first moment: importing the application takes seconds on a loaded machine.
    threading.Thread(
        target=_answer_pings,
        args=(control, lambda: bool(servers) and servers[0].started),
        name="supervisor-pings",
        daemon=True,
    ).start()

    listener = socket.socket(fileno=listen_fd)
    try:
        app = built_then_frozen(_prepared_app)  # the application imported and built, then frozen
    except Exception:
        logging.getLogger("dockyard").exception("worker process %s could not start", os.getpid())
        sys.exit(STARTUP_FAILURE)
    servers.append(uvicorn.Server(uvicorn_config(app.state.settings, app)))
    servers[0].run(sockets=[listener])


def _prepared_app() -> DockyardApp:
    from dockyard.app import create_app, die_with_supervisor
    from dockyard.logs import configure_logging
    from dockyard.settings import load_serialized
    from dockyard.startup import admin_password_notice, prepare_database

    die_with_supervisor()
    settings = load_serialized()
    configure_logging(settings.log_level)
    generated = prepare_database(settings)
    if generated is not None:
        sys.stdout.write(admin_password_notice(settings, generated) + "\n")
        sys.stdout.flush()
    return create_app(settings)


if __name__ == "__main__":
    main(sys.argv[1:])
