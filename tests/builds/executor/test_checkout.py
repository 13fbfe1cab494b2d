"""Checkout credentials: an HTTPS token reaches the git server through the askpass helper and nowhere else (not
argv, not the output); an SSH key is a private file used through GIT_SSH_COMMAND; local paths and file:// remotes
are refused (a link must not read the builder's own disk)."""

from __future__ import annotations

import asyncio
import base64
import stat
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from dockyard.builds.checkout import CheckoutFailed, checkout, git_environment
from dockyard.builds.executor import SourceCheckout
from tests.support.tools import require_tool

TOKEN = "ghp_checkout-secret-token-1234567890"


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        header = self.headers.get("Authorization", "")
        self.seen.append(header)
        if not header:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def auth_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Recorder", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/org/app.git", seen
    server.shutdown()
    server.server_close()


def _run_checkout(source: SourceCheckout, tmp_path: Path) -> tuple[list[list[str]], list[str], Exception | None]:
    argvs: list[list[str]] = []
    output: list[str] = []

    async def run(argv: list[str], env: Mapping[str, str], cwd: Path) -> int:
        argvs.append(argv)
        proc = await asyncio.create_subprocess_exec(
            *argv, env=dict(env), cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
        )
        out, _ = await proc.communicate()
        output.extend(out.decode(errors="replace").splitlines())
        return proc.returncode or 0

    error: Exception | None = None
    try:
        asyncio.run(checkout(source, tmp_path / "src", tmp_path / "private", run, {"PATH": "/usr/bin:/bin"}))
    except CheckoutFailed as exc:
        error = exc
    return argvs, output, error


def test_https_token_goes_through_askpass_only(auth_server: tuple[str, list[str]], tmp_path: Path) -> None:
    require_tool("git")
    url, seen = auth_server
    source = SourceCheckout(url, "a" * 40, https_token=TOKEN, https_username="robot")
    argvs, output, error = _run_checkout(source, tmp_path)
    assert isinstance(error, CheckoutFailed)  # the server has no repository: the point is what it was sent
    expected = "Basic " + base64.b64encode(f"robot:{TOKEN}".encode()).decode()
    assert expected in seen, seen
    assert not any(TOKEN in " ".join(argv) for argv in argvs)
    assert not any(TOKEN in line for line in output)
    assert TOKEN not in (tmp_path / "src" / ".git" / "config").read_text()
    askpass = tmp_path / "private" / "askpass.sh"
    assert TOKEN not in askpass.read_text()  # the script reads it from git's environment
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o700


def test_ssh_key_is_a_private_file(tmp_path: Path) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----"
    pinned = "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
    env = git_environment(
        SourceCheckout("git@git.example:org/app.git", "a" * 40, ssh_private_key=key, ssh_known_hosts=pinned),
        tmp_path / "private",
        {"PATH": "/usr/bin", "GIT_DIR": "/elsewhere", "SSH_AUTH_SOCK": "/run/agent"},
    )
    key_file = tmp_path / "private" / "id_key"
    assert key_file.read_text() == key + "\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"-i {key_file}" in env["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]
    assert (tmp_path / "private" / "known_hosts").read_text() == pinned + "\n"
    assert not any(key in value for value in env.values())
    assert "GIT_DIR" not in env
    assert "SSH_AUTH_SOCK" not in env


@pytest.mark.parametrize("url", ["/etc", "file:///etc", "ext::sh -c id", "--upload-pack=id", "./repo"])
def test_local_and_command_remotes_refused(url: str, tmp_path: Path) -> None:
    argvs, _, error = _run_checkout(SourceCheckout(url, "a" * 40), tmp_path)
    assert isinstance(error, CheckoutFailed)
    assert "not a network git URL" in str(error)
    assert argvs == []
