"""A loopback git server for build tests: ``git daemon`` serving bare repositories over ``git://127.0.0.1:<port>``,
and a working clone to commit and push with the ``git`` CLI.

``GitServer(root)`` starts the daemon on a free port (``--export-all --enable=receive-pack``: anonymous fetch and
push, loopback only); ``server.repository(name)`` makes a bare repository and returns a :class:`GitWork` clone
of it; ``work.commit(files, message)`` writes files, commits (fixed author and dates, so a commit's time is what
the test says) and pushes, returning the commit's sha.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import BinaryIO

from tests.support.ports import free_port
from tests.support.tools import require_tool

_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Dockyard Tests",
    "GIT_AUTHOR_EMAIL": "tests@dockyard.invalid",
    "GIT_COMMITTER_NAME": "Dockyard Tests",
    "GIT_COMMITTER_EMAIL": "tests@dockyard.invalid",
}


def _git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(_GIT_ENV, HOME=str(home))
    return env


class GitWork:
    """A working clone of one repository on the server."""

    def __init__(self, path: Path, url: str, env: dict[str, str]) -> None:
        self.path = path
        self.url = url
        self.env = env

    def git(self, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=self.path, env=self.env, capture_output=True, text=True, timeout=60, check=False
        )
        if proc.returncode != 0:
            raise AssertionError(f"git {' '.join(args)} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout.strip()

    def commit(
        self, files: dict[str, str | bytes], message: str = "change", when: int = 1_700_000_000, branch: str = "main"
    ) -> str:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
            self.git("add", name)
        date = f"@{when} +0000"
        self.env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        return self.git("rev-parse", "HEAD")


class GitServer:
    """``git daemon`` on loopback over the bare repositories under ``root``."""

    def __init__(self, root: Path) -> None:
        require_tool("git")
        self.root = root
        self.repos = root / "repos"
        self.repos.mkdir(parents=True)
        self.home = root / "home"
        self.home.mkdir()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with (self.root / "daemon.log").open("wb") as log:
            self.process = self._spawn(log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("git daemon did not start")

    def _spawn(self, log: BinaryIO) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                f"--base-path={self.repos}",
                "--export-all",
                "--enable=receive-pack",
                str(self.repos),
            ],
            env=_git_env(self.home),
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
            self.process = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def repository(self, name: str) -> GitWork:
        """A new bare repository ``name`` and a clone of it to commit in."""
        env = _git_env(self.home)
        bare = self.repos / f"{name}.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], env=env, check=True)
        work = self.root / "work" / name
        work.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], env=env, check=True)
        clone = GitWork(work, self.url(name), env)
        clone.git("remote", "add", "origin", self.url(name))
        return clone
