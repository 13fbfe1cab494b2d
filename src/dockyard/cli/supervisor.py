"""The process ``dockyard serve`` becomes when it runs several workers: a small supervisor, standard library only.

``dockyard serve`` prepares the server (settings, migrations, the first-start key and administrator), binds the
listening socket and then replaces itself (``os.execv``, same PID) with ``python -m dockyard.cli.supervisor``: so
nothing the preparation loaded — SQLAlchemy, Alembic, the application — stays in memory in the process that
only watches the workers. Each worker is ``python -m dockyard.cli.server_worker``: it inherits the listening
socket and a control socket, imports the application and serves.

What the supervisor does, as uvicorn's did before it:

- replaces a worker that exits, or that does not answer a ping on its control socket for ``--healthcheck``
  seconds (hung); a worker that fails its start-up (exit status 3, uvicorn's ``STARTUP_FAILURE``) stops the server
  with that status, since a replacement would fail the same way;
- on SIGTERM or SIGINT closes its copy of the listening socket at once (else the kernel would keep queueing new
  connections on a port no worker accepts on any more while in-flight requests finish), asks every worker to stop
  (SIGTERM: uvicorn's graceful shutdown) and kills any still running after ``--stop-timeout`` seconds;
- SIGHUP replaces the workers one by one, each once its replacement has started; SIGTTIN / SIGTTOU add or remove one;
- serves ``/metrics`` on ``metrics_address`` when given ``--metrics`` (``dockyard.http.metrics_listener``, rendering
  every worker's counters from the multiprocess directory, which it removes on exit).

Workers ask the kernel for SIGTERM when the supervisor dies (``dockyard.app.die_with_supervisor``).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from dockyard.logs import configure_logging

log = logging.getLogger("dockyard")

STARTUP_FAILURE = 3  # uvicorn.config.STARTUP_FAILURE: a worker that could not start
PING_SECONDS = 5.0  # how often workers are pinged on their control socket
TICK_SECONDS = 0.5
PING, STARTING, STARTED = b"?", b"0", b"1"  # the control protocol: a ping, answered with the worker's state


@dataclass
class Worker:
    """One worker process and the supervisor's end of its control socket."""

    process: subprocess.Popen[bytes]
    control: socket.socket
    answered: float = field(default_factory=time.monotonic)
    started: bool = False

    @property
    def pid(self) -> int:
        return self.process.pid

    def ping(self) -> None:
        with contextlib.suppress(OSError):
            self.control.send(PING)

    def read_answers(self) -> None:
        try:
            answers = self.control.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            answers = b""
        if answers:
            self.answered = time.monotonic()
            self.started = self.started or STARTED in answers

    def signal(self, signum: int) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)

    def close(self) -> None:
        self.control.close()


class Supervisor:
    """Keeps ``count`` workers serving on ``listener`` until told to stop."""

    def __init__(self, listener: socket.socket, count: int, *, stop_timeout: float, healthcheck: float) -> None:
        self.listener = listener
        self.count = count
        self.stop_timeout = stop_timeout
        self.healthcheck = healthcheck
        self.workers: list[Worker] = []
        self.signals: list[int] = []
        self.stopping = False
        self.status = 0
        self._last_ping = 0.0

    def spawn(self) -> Worker:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        process = subprocess.Popen(
            [sys.executable, "-m", "dockyard.cli.server_worker", str(self.listener.fileno()), str(theirs.fileno())],
            pass_fds=(self.listener.fileno(), theirs.fileno()),
        )
        theirs.close()
        log.info("started worker process %s", process.pid)
        return Worker(process, ours)

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, lambda signum, _frame: self.signals.append(signum))
        log.info("supervisor process %s starting %s workers", os.getpid(), self.count)
        self.workers = [self.spawn() for _ in range(self.count)]
        while not self.stopping:
            self._wait(TICK_SECONDS)
            self._handle_signals()
            if not self.stopping:
                self._keep_alive()
        self._stop_all()
        return self.status

    def _wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, reading the workers' answers as they arrive."""
        controls = {worker.control.fileno(): worker for worker in self.workers}
        with contextlib.suppress(InterruptedError):
            readable, _, _ = select.select(list(controls), [], [], seconds)
            for fd in readable:
                controls[fd].read_answers()

    def _handle_signals(self) -> None:
        while self.signals:
            signum = self.signals.pop(0)
            if signum in (signal.SIGTERM, signal.SIGINT):
                log.info("received %s, stopping", signal.Signals(signum).name)
                self.listener.close()  # workers close their copies as their shutdown starts
                self.stopping = True
                return
            if signum == signal.SIGHUP:
                self._restart_all()
            elif signum == signal.SIGTTIN:
                self.count += 1
                self.workers.append(self.spawn())
            elif signum == signal.SIGTTOU and self.count > 1:
                self.count -= 1
                self._retire(self.workers.pop())

    def _keep_alive(self) -> None:
        now = time.monotonic()
        if now - self._last_ping >= PING_SECONDS:
            self._last_ping = now
            for worker in self.workers:
                worker.ping()
        for index, worker in enumerate(self.workers):
            code = worker.process.poll()
            if code is None and now - worker.answered < self.healthcheck:
                continue
            if code is None:
                log.error("worker process %s did not answer for %s s; replacing it", worker.pid, self.healthcheck)
                worker.signal(signal.SIGKILL)
                worker.process.wait()
            worker.close()
            if code == STARTUP_FAILURE:
                log.error("worker process %s failed to start; stopping the server", worker.pid)
                self.status = STARTUP_FAILURE
                self.stopping = True
                self.workers.pop(index)
                return
            log.warning("worker process %s exited (status %s); starting another", worker.pid, code)
            self.workers[index] = self.spawn()

    def _restart_all(self) -> None:
        """Replace each worker once its replacement has finished its start-up (or keep it if that fails)."""
        for index, old in enumerate(list(self.workers)):
            new = self.spawn()
            deadline = time.monotonic() + self.healthcheck
            while not new.started and new.process.poll() is None and time.monotonic() < deadline:
                new.ping()
                self._wait_for(new, 0.2)
                if self.signals and self.signals[0] in (signal.SIGTERM, signal.SIGINT):
                    break
            if not new.started:
                log.error("replacement worker %s did not start; keeping worker %s", new.pid, old.pid)
                self._retire(new, grace=0)
                return
            self.workers[index] = new
            self._retire(old)

    @staticmethod
    def _wait_for(worker: Worker, seconds: float) -> None:
        with contextlib.suppress(InterruptedError):
            if select.select([worker.control], [], [], seconds)[0]:
                worker.read_answers()

    def _retire(self, worker: Worker, grace: float | None = None) -> None:
        worker.signal(signal.SIGTERM if grace is None else signal.SIGKILL)
        self._join([worker])

    def _stop_all(self) -> None:
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        self._join(self.workers)
        log.info("supervisor process %s stopped", os.getpid())

    def _join(self, workers: list[Worker]) -> None:
        deadline = time.monotonic() + self.stop_timeout
        for worker in workers:
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker process %s did not stop within %s s; killing it", worker.pid, self.stop_timeout)
                worker.signal(signal.SIGKILL)
                worker.process.wait()
            worker.close()


def _metrics(settings_needed: bool) -> Callable[[], None]:
    """Start the ``/metrics`` listener when asked to; returns what closes it. Only then are the settings (pydantic)
    and prometheus_client loaded into this process."""
    if not settings_needed:
        return lambda: None
    from dockyard.http.metrics import multiprocess_registry
    from dockyard.http.metrics_listener import MetricsListener
    from dockyard.settings import load_serialized, multiprocess_metrics_dir

    settings = load_serialized()
    directory = multiprocess_metrics_dir() or ""
    try:
        listener = MetricsListener(
            settings.metrics_address, lambda: multiprocess_registry(directory), settings.metrics_token
        )
    except OSError as exc:
        sys.stderr.write(f"Error: metrics_address {settings.metrics_address}: {exc.strerror or exc}\n")
        raise SystemExit(1) from exc
    return listener.close


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dockyard.cli.supervisor", description=__doc__.splitlines()[0])
    parser.add_argument("--fd", type=int, required=True, help="the listening socket, inherited")
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--stop-timeout", type=float, required=True)
    parser.add_argument("--healthcheck", type=float, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--metrics", action="store_true", help="serve /metrics on the settings' metrics_address")
    parser.add_argument("--remove-on-exit", default="", help="a directory to remove when the server stops")
    args = parser.parse_args(argv)
    configure_logging(args.log_level)
    try:
        close_metrics = _metrics(args.metrics)
        try:
            listener = socket.socket(fileno=args.fd)
            supervisor = Supervisor(
                listener, args.workers, stop_timeout=args.stop_timeout, healthcheck=args.healthcheck
            )
            return supervisor.run()
        finally:
            close_metrics()
    finally:
        if args.remove_on_exit:
            shutil.rmtree(args.remove_on_exit, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
