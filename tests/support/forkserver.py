"""A fork server for ``DockyardServer``: one process per test process that has imported what ``dockyard serve``
imports to start (the application, SQLAlchemy, Starlette, Pydantic: about a second of CPU and most of a start's
wall time on this 2-core machine kind) and forks each test server from there, instead of a new interpreter
importing it all again. The suite starts a couple of hundred servers.

The forked child then runs what ``python -m dockyard.cli.main serve …`` runs: the same module as ``__main__``,
with the request's arguments, environment (all of it: ``os.environ`` is replaced), working directory and output
file, in a session of its own (``start_new_session``), stdin on ``/dev/null`` — and exits as that process would
(atexit handlers, exit status). Its imports were made once, before the request's environment existed: nothing
Dockyard imports reads the environment at import time, and the fork server leaves out ``DOCKYARD_*`` (but for
``DOCKYARD_TEST_BACKEND``, which picks what it preloads) and ``PROMETHEUS_MULTIPROC_DIR`` (which
``prometheus_client`` does read at import) when it starts. A server with
several workers ``execv``\\ s its supervisor as before, and the workers are new interpreters as before.

CLI commands that tests run as the operator would (``dockyard gc``, ``backup``, ``vulndb`` …) are forked the same
way (``ForkServer.run``, used by ``tests.support.cli.dockyard_cli``), with stdin, stdout and stderr on files of
their own; the CLI's command modules are preloaded too.

A forked server is not a child of the test process: ``ForkedProcess`` offers what tests use of ``subprocess.Popen``
(``pid``, ``poll``, ``wait``, ``send_signal``, ``terminate``, ``kill``, ``returncode``) with the exit status
reported by the fork server, which reaps its children.

``DOCKYARD_TEST_FORKSERVER=0`` starts every server as a subprocess of its own, and so does a run under coverage
(``make coverage``): a forked child would not be measured.

Run as ``python -m tests.support.forkserver``: the fork server itself (standard library only until it preloads).
"""

from __future__ import annotations

import atexit
import gc
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any

from tests.support.processes import wait_or_kill

# What a one-worker `dockyard serve` imports before it answers (tests/integration/test_startup_imports.py lists
# what it must not). The scale-out backend's database driver and S3 client are added for that backend.
MAIN = "dockyard.cli.main"
PRELOAD = (
    MAIN,
    "dockyard.cli.serve",
    "dockyard.startup",
    "dockyard.migrations.runner",
    "dockyard.accounts.users",
    "dockyard.webhooks.notifications",
    "dockyard.app",
)
PRELOAD_SCALEOUT = ("sqlalchemy.dialects.postgresql.asyncpg", "asyncpg", "dockyard.storage.s3.store")
# What a server loads on first use, which most test servers reach and each paid again: the Hub API on the first
# `/api/` request (FastAPI and its models), PyJWT and cryptography on the first token or sealed secret, and each
# job kind's task module on its first job (``dockyard.jobs.registry.HANDLER_MODULES``: the SBOM writers, the OSV
# matcher, mail, builds …).
PRELOAD_ON_FIRST_USE = (
    "dockyard.http.api.app",
    # The administration commands tests run (``dockyard.cli.main`` imports each on first use).
    "dockyard.cli.accounts",
    "dockyard.cli.backups",
    "dockyard.cli.keygen",
    "dockyard.cli.sign",
    "dockyard.cli.vulns",
    "jwt",
    "cryptography.fernet",
    "cryptography.hazmat.primitives.asymmetric.ec",
    "cryptography.hazmat.primitives.kdf.hkdf",
    "cryptography.hazmat.primitives.serialization",
)


_LEFT_OUT_OF_THE_FORK_SERVER = ("PROMETHEUS_MULTIPROC_DIR",)
_REAP_EVERY = 0.05


def enabled() -> bool:
    if os.environ.get("DOCKYARD_TEST_FORKSERVER", "1") == "0":
        return False
    return os.environ.get("DOCKYARD_COVERAGE") != "1" and "COVERAGE_PROCESS_START" not in os.environ


def command(args: list[str]) -> list[str]:
    """The command line of ``python -m dockyard.cli.main *args`` in this interpreter."""
    return [sys.executable, "-m", MAIN, *args]


class ForkedProcess:
    """A process the fork server started (a server, or a CLI command): what tests use of ``subprocess.Popen``."""

    def __init__(self, server: ForkServer, pid: int, spawn: int, args: list[str]) -> None:
        self._server = server
        self.pid = pid
        self._spawn = spawn  # the fork server's number for this child: its PID may be a later child's, once reaped
        self.args = args
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.status(self._spawn)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            time.sleep(0.02)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # not reaped yet: the PID is still this process's (a zombie at worst)
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The test process's side: starts the fork server and asks it for processes and their exit statuses."""

    def __init__(self, repo_root: Path, log_path: Path) -> None:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith("DOCKYARD_") or name == "DOCKYARD_TEST_BACKEND"
        }
        for name in _LEFT_OUT_OF_THE_FORK_SERVER:
            env.pop(name, None)
        with log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.forkserver"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=repo_root,
                env=env,
            )
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._requests: IO[bytes] = self._process.stdin
        self._answers: IO[bytes] = self._process.stdout
        self._lock = threading.Lock()
        ready = self._answers.readline()
        if json.loads(ready or b"null") != {"ready": True}:
            self._process.kill()
            raise RuntimeError(f"the test fork server did not start (see {log_path})")

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self._requests.write(json.dumps(request).encode() + b"\n")
            self._requests.flush()
            line = self._answers.readline()
        if not line:
            raise RuntimeError("the test fork server has exited")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the test fork server could not start a process: {answer['error']}")
        return answer

    def spawn(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        log_path: Path,
        stdin: Path | None = None,
        stdout: Path | None = None,
    ) -> ForkedProcess:
        """Fork ``python -m dockyard.cli.main *args`` with exactly ``env``, output appended to ``log_path`` (its
        stdout written to ``stdout`` instead when given; its stdin read from ``stdin``, else ``/dev/null``)."""
        request: dict[str, Any] = {"op": "spawn", "args": args, "env": env, "cwd": str(cwd), "log": str(log_path)}
        request.update({name: str(path) for name, path in (("stdin", stdin), ("stdout", stdout)) if path is not None})
        answer = self._call(request)
        return ForkedProcess(self, int(answer["pid"]), int(answer["spawn"]), command(args))

    def run(
        self, args: list[str], *, env: dict[str, str], cwd: Path, input: str | None, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python -m dockyard.cli.main *args`` to its end, as ``subprocess.run(…, capture_output=True,
        text=True)`` would: ``input`` on its stdin, its stdout and stderr apart. Kills it after ``timeout`` s
        (raising ``TimeoutExpired``)."""
        with tempfile.TemporaryDirectory(prefix="dockyard-cli-") as scratch:
            stdin, stdout, stderr = (Path(scratch, name) for name in ("stdin", "stdout", "stderr"))
            stdin.write_text(input or "")
            process = self.spawn(args, env=env, cwd=cwd, log_path=stderr, stdin=stdin, stdout=stdout)
            if not wait_or_kill(process, timeout):
                raise subprocess.TimeoutExpired(process.args, timeout)
            code = process.wait()
            return subprocess.CompletedProcess(process.args, code, stdout.read_text(), stderr.read_text())

    def status(self, spawn: int) -> int | None:
        """The exit status of the process it forked as number ``spawn``, as ``Popen.returncode`` (None while it
        runs). Not by PID: the system reuses the PID of a reaped child (pid_max is 32768 here, and a suite run
        starts far more processes), and a new child must not inherit an old one's status."""
        code = self._call({"op": "status", "spawn": spawn})["code"]
        return None if code is None else int(code)

    def close(self) -> None:
        with self._lock:
            self._requests.close()
        wait_or_kill(self._process, 10)
        self._answers.close()


_shared: ForkServer | None = None
_shared_lock = threading.Lock()


def shared(repo_root: Path) -> ForkServer:
    """The test process's fork server, started on first use, stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"dockyard-forkserver-{os.getpid()}.log"
            _shared = ForkServer(repo_root, log_path)
            atexit.register(_shared.close)
        return _shared


# --- the fork server process -------------------------------------------------------------------------------------


def _preload() -> None:
    from dockyard.cli.lean_imports import skip_unused_imports

    skip_unused_imports()  # as `dockyard serve` does before it imports uvicorn and httpx
    import importlib

    names = PRELOAD + (PRELOAD_SCALEOUT if os.environ.get("DOCKYARD_TEST_BACKEND") == "scaleout" else ())
    for name in names:
        importlib.import_module(name)
    from dockyard.jobs.registry import HANDLER_MODULES

    for name in (*PRELOAD_ON_FIRST_USE, *HANDLER_MODULES):
        importlib.import_module(name)
    # The CLI's own module runs as __main__ in each child, as with `python -m`: keep what it imported, not it.
    del sys.modules[MAIN]
    delattr(sys.modules[MAIN.rpartition(".")[0]], MAIN.rpartition(".")[2])
    if threading.active_count() != 1:  # forking a process with threads would copy their locks mid-use
        raise RuntimeError(f"preloading started threads: {threading.enumerate()}")
    # What every child inherits goes to the permanent generation: a child's full collections skip it.
    gc.collect()
    gc.freeze()


def _become(request: dict[str, Any], requests: int, answers: int) -> None:
    """In the forked child: take the request's session, input and output (``stdin`` or ``/dev/null``; ``stdout``
    or the log; the log), directory, environment and arguments."""
    os.setsid()
    os.close(requests)
    os.close(answers)
    stdin = os.open(request.get("stdin", os.devnull), os.O_RDONLY)
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    stdout = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644) if "stdout" in request else log
    os.dup2(stdin, 0)
    os.dup2(stdout, 1)
    os.dup2(log, 2)
    for fd in {stdin, stdout, log}:
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = [sys.argv[0], *request["args"]]


def _serve() -> dict[str, Any] | None:
    """Answer requests until the test process closes the pipe (returns None); in a forked child, return its
    request."""
    requests, answers = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(2, 1)  # nothing the preloaded modules print may reach the protocol
    os.close(null)
    _preload()
    running: dict[int, int] = {}  # PID → spawn number, while the child runs
    codes: dict[int, int] = {}  # spawn number → exit status, once reaped
    spawned = 0
    pending = b""

    def answer(message: dict[str, Any]) -> None:
        os.write(answers, json.dumps(message).encode() + b"\n")

    def reap() -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in running:
                codes[running.pop(pid)] = os.waitstatus_to_exitcode(status)

    answer({"ready": True})
    while True:
        readable, _, _ = select.select([requests], [], [], _REAP_EVERY)
        reap()
        if not readable:
            continue
        chunk = os.read(requests, 1 << 16)
        if not chunk:
            return None
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            request: dict[str, Any] = json.loads(line)
            if request["op"] == "status":
                reap()
                answer({"code": codes.get(int(request["spawn"]))})
                continue
            sys.stdout.flush()
            sys.stderr.flush()
            try:
                pid = os.fork()
            except OSError as exc:
                answer({"error": str(exc)})
                continue
            if pid == 0:
                _become(request, requests, answers)
                return request
            spawned += 1
            running[pid] = spawned
            answer({"pid": pid, "spawn": spawned})


def main() -> None:
    if _serve() is None:
        return
    import runpy

    # What `python -m dockyard.cli.main` runs; its SystemExit (or exception) ends this process as it would that one.
    runpy.run_module(MAIN, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
