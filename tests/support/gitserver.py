"""A real git server on loopback for the build tests: ``git daemon`` serving bare repositories under a temporary
root (fetch and push over ``git://127.0.0.1:PORT/NAME.git``), and ``WorkTree``, a clone that commits, tags and
pushes with the git CLI."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.ports import free_port
from tests.support.processes import stop

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.test",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.test",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path | None = None) -> str:
    env = {**os.environ, **GIT_ENV, "HOME": str(cwd or Path.cwd())}
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


class GitServer:
    """``git daemon`` with push enabled, on a free loopback port, until ``stop()``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> GitServer:
        self._process = subprocess.Popen(
            [
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                "--enable=receive-pack",
                f"--base-path={self.root}",
                "--listen=127.0.0.1",
                f"--port={self.port}",
                str(self.root),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("git daemon did not start")

    def stop(self) -> None:
        if self._process is not None:
            stop(self._process, timeout=5)
            self._process = None

    def url(self, name: str) -> str:
        return f"git://127.0.0.1:{self.port}/{name}.git"

    def create(self, name: str, work: Path) -> WorkTree:
        """A new bare repository ``name`` and a work tree cloned from it under ``work``."""
        bare = self.root / f"{name}.git"
        git("init", "--bare", "--initial-branch=main", str(bare))
        git("config", "daemon.receivepack", "true", cwd=bare)
        git("clone", self.url(name), str(work), cwd=self.root)
        git("checkout", "-B", "main", cwd=work)
        return WorkTree(work, self.url(name))


@dataclass
class WorkTree:
    path: Path
    url: str

    def commit(self, files: dict[str, str], message: str = "change") -> str:
        """Write ``files`` (path → text), commit them all; returns the commit's sha."""
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git("add", "-A", cwd=self.path)
        git("commit", "-q", "--allow-empty", "-m", message, cwd=self.path)
        return git("rev-parse", "HEAD", cwd=self.path)

    def branch(self, name: str) -> None:
        git("checkout", "-q", "-B", name, cwd=self.path)

    def tag(self, name: str, *, annotated: bool = False) -> None:
        if annotated:
            git("tag", "-a", name, "-m", f"release {name}", cwd=self.path)
        else:
            git("tag", name, cwd=self.path)

    def push(self, *refs: str) -> None:
        git("push", "-q", "origin", *(refs or ("HEAD",)), cwd=self.path)

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.path)
