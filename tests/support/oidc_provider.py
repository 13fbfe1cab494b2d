"""``OidcProvider``: a real OpenID provider on loopback for the single sign-on tests — the npm package
``oidc-provider`` run by ``tests/support/oidc/provider.js`` with Debian's node, installed from its lock file by
``make test`` (``scripts/install-node-deps.sh``: ``npm ci``). Its users live in a JSON file that the provider reads
at every look-up, so a test changes a user's groups between two sign-ins with ``set_user``.

A missing node or ``node_modules`` skips the tests locally and fails them under ``CI=true``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.ports import free_port
from tests.support.processes import stop
from tests.support.tools import missing, require_tool

PACKAGE = Path(__file__).resolve().parent / "oidc"


class OidcProvider:
    """One provider process with one confidential client, ``CLIENT_ID``/``CLIENT_SECRET``."""

    CLIENT_ID = "dockyard-tests"
    CLIENT_SECRET = "client-secret-for-tests"

    def __init__(self, workdir: Path, redirect_uri: str) -> None:
        self.workdir = workdir
        self.redirect_uri = redirect_uri
        self.port = free_port()
        self.users_file = workdir / "users.json"
        self.log_path = workdir / "provider.log"
        self._users: dict[str, Any] = {}
        self._process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self._write()

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set_user(self, login: str, password: str, **claims: Any) -> None:
        """Add or change a user (its claims: ``preferred_username``, ``email``, ``groups``…)."""
        self._users[login] = {"password": password, "claims": claims}
        self._write()

    def _write(self) -> None:
        temporary = self.users_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._users))
        temporary.replace(self.users_file)  # the provider never reads half a file

    def start(self, timeout: float = 30.0) -> None:
        node = require_tool("node")
        if not (PACKAGE / "node_modules" / "oidc-provider").is_dir():
            missing("tests/support/oidc has no node_modules: run `make node-deps` (npm ci; make test does it)")
        env = {
            **os.environ,
            "OIDC_PORT": str(self.port),
            "OIDC_CLIENT_ID": self.CLIENT_ID,
            "OIDC_CLIENT_SECRET": self.CLIENT_SECRET,
            "OIDC_REDIRECT_URI": self.redirect_uri,
            "OIDC_USERS": str(self.users_file),
        }
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [node, str(PACKAGE / "provider.js")], cwd=PACKAGE, env=env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the OpenID provider did not start within {timeout} s")

    def stop(self) -> None:
        if self._process is None:
            return
        stop(self._process)
        self._process = None

    def settings_env(self, **extra: str) -> dict[str, str]:
        """The ``DOCKYARD_OIDC_*`` settings of a Dockyard that signs in with this provider."""
        return {
            "DOCKYARD_OIDC_ISSUER": self.issuer,
            "DOCKYARD_OIDC_CLIENT_ID": self.CLIENT_ID,
            "DOCKYARD_OIDC_CLIENT_SECRET": self.CLIENT_SECRET,
            "DOCKYARD_OIDC_SCOPES": "openid,profile,email,groups",
            **extra,
        }
