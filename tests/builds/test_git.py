"""The pipeline's own git (``dockyard.builds.git``): which URLs a build link may name, the deploy key of an SSH link,
and ``git ls-remote`` with a link's credentials — over SSH (the real git CLI, with an ``ssh`` on ``PATH`` that checks
what it is handed and then runs git's remote command on a local bare repository: no sshd here), over HTTP with a
token (a recording server on loopback), failing, and timing out."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shlex
import stat
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dockyard.builds import git
from dockyard.builds.git import GitAuth, GitError, git_environment, is_ssh_url, ls_remote, validate_git_url
from dockyard.errors import Invalid
from tests.support.gitserver import git as run_git
from tests.support.tools import require_tool

pytestmark = pytest.mark.embedded_only

TOKEN = "ghp_ls-remote-secret-token-0123456789"
PINNED = "git.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPinnedHostKeyForTheTests"


# -- which URLs a link may name ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example/acme/app.git",
        "http://git.example:8080/acme/app",
        "git://git.example/acme/app.git",
        "ssh://git@git.example:2222/acme/app.git",  # a user name is how SSH logs in, not a credential
        "ssh://git.example/acme/app.git",
        "git@github.com:acme/app.git",
        "deploy_bot@git.example.org:teams/acme/app",
    ],
)
def test_network_git_urls_are_accepted_as_given(url: str) -> None:
    assert validate_git_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "-uhttps://git.example/app.git",  # would be read as an option by git
        "https://git.example/acme app.git",
        "https://git.example/app.git\n",
        "https://git.example/\tapp.git",
        "https://git.example/" + "a" * 2029,  # 2049 characters
    ],
)
def test_empty_long_option_like_or_spaced_urls_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_git_url(url)
    assert refused.value.subject == "build_link"
    assert "at most 2048 characters without spaces" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "ssh://-oProxyCommand=id/foo",
        "ssh://git@-oProxyCommand=id/x",
        "ssh://-oProxyCommand=id@git.example/x",
        "git://-oProxyCommand=id/app.git",
    ],
)
def test_hosts_and_users_that_ssh_would_read_as_options_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_git_url(url)
    assert refused.value.message == "url's host and user must not start with '-'"


def test_a_url_of_exactly_2048_characters_is_accepted() -> None:
    url = "https://git.example/" + "a" * 2028
    assert len(url) == 2048
    assert validate_git_url(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "file:///srv/git/app.git",  # the builder's own disk
        "ext::ssh-agent",  # ext:: runs a command
        "ftp://git.example/app.git",
        "/srv/git/app.git",
        "./app.git",
        "git.example:acme/app.git",  # scp-like needs user@host
        "https:///acme/app.git",  # no host
        "https://[::1/app.git",  # malformed
        "git@git.example:path://elsewhere",  # scp-like in shape, but names a scheme
    ],
)
def test_other_transports_and_urls_without_a_host_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_git_url(url)
    assert refused.value.subject == "build_link"
    assert "http, https, ssh, git URL with a host, or user@host:path" in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://robot:ghp_secret@git.example/acme/app.git",
        "https://ghp_secret@git.example/acme/app.git",  # a token as the user name
        "http://robot@git.example/acme/app.git",
        "ssh://git:hunter2@git.example/acme/app.git",
        "git://anon:pw@git.example/acme/app.git",
    ],
)
def test_credentials_in_the_url_are_refused(url: str) -> None:
    with pytest.raises(Invalid) as refused:
        validate_git_url(url)
    assert refused.value.message == "put credentials in https_username/https_token, not in the URL"
    assert "ghp_secret" not in refused.value.message


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("ssh://git.example/acme/app.git", True),
        ("git@github.com:acme/app.git", True),
        ("https://git.example/acme/app.git", False),
        ("git://git.example/acme/app.git", False),
        ("git.example:acme/app.git", False),
    ],
)
def test_ssh_urls_are_told_apart(url: str, ssh: bool) -> None:
    assert is_ssh_url(url) is ssh


# -- the deploy key, the environment, redaction -------------------------------------------------------------------


def test_a_new_deploy_key_is_an_ed25519_pair_whose_public_line_carries_the_comment() -> None:
    private, public = git.new_deploy_key("dockyard-build:acme/app")
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    loaded = serialization.load_ssh_private_key(private.encode(), password=None)
    assert isinstance(loaded, Ed25519PrivateKey)
    kind, blob, comment = public.split(" ")
    assert (kind, comment) == ("ssh-ed25519", "dockyard-build:acme/app")
    derived = loaded.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    assert derived.decode() == f"{kind} {blob}"
    assert git.new_deploy_key("x")[0] != private  # a fresh key each time


def test_an_https_token_goes_into_git_config_variables_as_a_basic_header() -> None:
    with git_environment(GitAuth(https_username="robot", https_token=TOKEN)) as env:
        assert env["GIT_CONFIG_COUNT"] == "1"
        assert env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        header = env["GIT_CONFIG_VALUE_0"]
    assert header == "Authorization: Basic " + base64.b64encode(f"robot:{TOKEN}".encode()).decode()
    assert (env["GIT_TERMINAL_PROMPT"], env["GIT_ALLOW_PROTOCOL"], env["GIT_CONFIG_NOSYSTEM"]) == (
        "0",
        "http:https:ssh:git",
        "1",
    )
    assert "GIT_SSH_COMMAND" not in env
    # Without a user name, GitHub's convention for tokens.
    with git_environment(GitAuth(https_token=TOKEN)) as env:
        assert base64.b64decode(env["GIT_CONFIG_VALUE_0"].split()[-1]).decode() == f"x-access-token:{TOKEN}"


def test_without_credentials_nothing_is_configured() -> None:
    with git_environment(GitAuth(https_username="robot")) as env:  # a user name alone is no credential
        assert env["GIT_CONFIG_COUNT"] == "0"
        assert not any(name.startswith(("GIT_CONFIG_KEY", "GIT_CONFIG_VALUE", "GIT_SSH")) for name in env)


def test_the_ssh_key_is_a_private_file_only_while_the_command_runs() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90LWEta2V5\n-----END OPENSSH PRIVATE KEY-----"
    with git_environment(GitAuth(ssh_private_key=key, ssh_known_hosts=PINNED)) as env:
        options = _ssh_options(env["GIT_SSH_COMMAND"])
        key_file = Path(options["-i"][0])
        assert key_file.read_text() == key + "\n"  # OpenSSH wants the final newline
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
        hosts = dict(o.split("=", 1) for o in options["-o"])
        assert Path(hosts["UserKnownHostsFile"]).read_text() == PINNED + "\n"
        assert (hosts["StrictHostKeyChecking"], hosts["IdentitiesOnly"], hosts["BatchMode"]) == ("yes", "yes", "yes")
        assert not any(key in value for value in env.values())
    assert not key_file.exists()
    assert not key_file.parent.exists()


def test_without_pinned_host_keys_a_new_host_is_accepted_into_a_private_file() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90LWEta2V5\n-----END OPENSSH PRIVATE KEY-----\n"
    with git_environment(GitAuth(ssh_private_key=key)) as env:
        options = _ssh_options(env["GIT_SSH_COMMAND"])
        key_file = Path(options["-i"][0])
        assert key_file.read_text() == key  # already ends with a newline: none added
        hosts = dict(o.split("=", 1) for o in options["-o"])
        assert hosts["StrictHostKeyChecking"] == "accept-new"
        assert Path(hosts["UserKnownHostsFile"]).parent == key_file.parent
        assert not Path(hosts["UserKnownHostsFile"]).exists()


def test_redact_replaces_the_token_and_extra_secrets_but_not_short_ones() -> None:
    auth = GitAuth(https_token=TOKEN)
    text = f"fatal: {TOKEN} and hunter2-secret and abc"
    assert git.redact(text, auth, {"ARG": "hunter2-secret", "SHORT": "abc"}) == "fatal: *** and *** and abc"
    assert git.redact(text, GitAuth()) == text


def _ssh_options(command: str) -> dict[str, list[str]]:
    """``GIT_SSH_COMMAND``'s options: flag → values."""
    words = shlex.split(command)
    assert words[0] == "ssh"
    options: dict[str, list[str]] = {}
    for flag, value in zip(words[1::2], words[2::2], strict=True):
        options.setdefault(flag, []).append(value)
    return options


# -- ls-remote over SSH ----------------------------------------------------------------------------------------

# An `ssh` for git to run: it writes down what it was given (its arguments, the key file's text and mode, the known
# hosts file) and runs git's remote command here, on the local bare repository the URL's path names.
SSH_SHIM = """#!{python}
import json, os, stat, sys
args = sys.argv[1:]
key = args[args.index("-i") + 1]
options = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "-o")
hosts = options.get("UserKnownHostsFile", "")
record = {{
    "argv": args,
    "key": open(key).read(),
    "key_mode": stat.S_IMODE(os.stat(key).st_mode),
    "known_hosts": open(hosts).read() if os.path.exists(hosts) else None,
    "options": options,
}}
with open({record!r}, "a") as out:
    out.write(json.dumps(record) + "\\n")
if {fail!r}:
    sys.stderr.write("git@git.example: Permission denied (publickey).\\n")
    sys.exit(255)
os.execvp("sh", ["sh", "-c", args[-1]])
"""


class SshShim:
    def __init__(self, root: Path, fail: bool = False) -> None:
        self.bin = root / "bin"
        self.bin.mkdir()
        self.record = root / "ssh-calls.jsonl"
        script = self.bin / "ssh"
        script.write_text(SSH_SHIM.format(python=sys.executable, record=str(self.record), fail=fail))
        script.chmod(0o755)

    @property
    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]


@pytest.fixture(scope="module")
def bare_repository(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """A bare repository with ``main`` at a commit, a lightweight tag ``v1`` and an annotated tag ``v2``:
    (its path, the commit, the annotated tag object)."""
    require_tool("git")
    root = tmp_path_factory.mktemp("ls-remote")
    work = root / "work"
    run_git("init", "-q", "--initial-branch=main", str(work), cwd=root)
    (work / "Dockerfile").write_text("FROM scratch\n")
    run_git("add", "-A", cwd=work)
    run_git("commit", "-q", "-m", "initial", cwd=work)
    run_git("tag", "v1", cwd=work)
    run_git("tag", "-a", "v2", "-m", "release 2", cwd=work)
    run_git("checkout", "-q", "-b", "feature", cwd=work)
    bare = root / "app.git"
    run_git("clone", "-q", "--bare", str(work), str(bare), cwd=root)
    return bare, run_git("rev-parse", "HEAD", cwd=work), run_git("rev-parse", "v2", cwd=work)


@pytest.fixture
def ssh_shim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SshShim:
    shim = SshShim(tmp_path)
    monkeypatch.setenv("PATH", f"{shim.bin}{os.pathsep}{os.environ['PATH']}")
    return shim


def test_ls_remote_over_ssh_uses_the_deploy_key_and_the_pinned_host(
    bare_repository: tuple[Path, str, str], ssh_shim: SshShim
) -> None:
    bare, commit, tag_object = bare_repository
    private, _ = git.new_deploy_key("dockyard-build:acme/app")
    url = f"ssh://git@git.example:2222{bare}"
    auth = GitAuth(ssh_private_key=private, ssh_known_hosts=PINNED)

    refs = asyncio.run(ls_remote(url, auth))

    assert refs == {
        "refs/heads/main": commit,
        "refs/heads/feature": commit,
        "refs/tags/v1": commit,
        "refs/tags/v2": tag_object,
        "refs/tags/v2^{}": commit,  # the annotated tag's commit
    }
    (call,) = ssh_shim.calls
    assert call["key"] == private + ("" if private.endswith("\n") else "\n")
    assert call["key_mode"] == 0o600
    assert call["known_hosts"] == PINNED + "\n"
    assert call["options"]["StrictHostKeyChecking"] == "yes"
    assert call["options"]["BatchMode"] == "yes"
    assert "git@git.example" in call["argv"]
    assert call["argv"][call["argv"].index("-p") + 1] == "2222"
    assert call["argv"][-1].startswith("git-upload-pack ")
    assert private not in json.dumps(call["argv"])  # the key is a file, never an argument
    key_file = call["argv"][call["argv"].index("-i") + 1]
    assert not Path(key_file).exists()  # removed once ls-remote returned


def test_ls_remote_of_an_scp_like_url_with_patterns(bare_repository: tuple[Path, str, str], ssh_shim: SshShim) -> None:
    bare, commit, _ = bare_repository
    url = f"git@git.example:{bare}"
    private, _ = git.new_deploy_key("k")
    assert validate_git_url(url) == url
    assert is_ssh_url(url)

    refs = asyncio.run(ls_remote(url, GitAuth(ssh_private_key=private), "refs/heads/main"))

    assert refs == {"refs/heads/main": commit}
    (call,) = ssh_shim.calls
    assert call["options"]["StrictHostKeyChecking"] == "accept-new"
    assert call["known_hosts"] is None
    assert "-p" not in call["argv"]


def test_a_failed_ls_remote_says_gits_fatal_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("git")
    shim = SshShim(tmp_path, fail=True)
    monkeypatch.setenv("PATH", f"{shim.bin}{os.pathsep}{os.environ['PATH']}")
    private, _ = git.new_deploy_key("k")

    with pytest.raises(GitError) as failed:
        asyncio.run(ls_remote("git@git.example:acme/app.git", GitAuth(ssh_private_key=private)))

    # After ssh's "Permission denied" git prints "fatal: Could not read from remote repository." and a hint over
    # three lines ("Please make sure you have the correct access rights / and the repository exists."): the
    # message is the fatal line, not the end of the hint.
    assert str(failed.value) == "git ls-remote: fatal: Could not read from remote repository."
    assert len(shim.calls) == 1


# -- ls-remote over HTTP with a token --------------------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_remote() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    seen: list[tuple[str, str]] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Recorder", (_Recorder,), {"seen": seen}))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_ls_remote_sends_the_token_as_a_header_and_redacts_it_from_the_error(
    http_remote: tuple[str, list[tuple[str, str]]],
) -> None:
    require_tool("git")
    base, seen = http_remote
    # A URL that (wrongly) holds the token: git's error names the URL, the message must not.
    url = f"{base}/{TOKEN}/app.git"
    with pytest.raises(GitError) as failed:
        asyncio.run(ls_remote(url, GitAuth(https_username="robot", https_token=TOKEN)))

    expected = "Basic " + base64.b64encode(f"robot:{TOKEN}".encode()).decode()
    assert seen, "git never asked the server"
    assert all(header == expected for _, header in seen), seen
    message = str(failed.value)
    assert message.startswith("git ls-remote: ")
    assert TOKEN not in message
    assert "/***/app.git" in message


# -- ls-remote that hangs ---------------------------------------------------------------------------------------


def test_ls_remote_gives_up_after_its_timeout_and_kills_git(monkeypatch: pytest.MonkeyPatch) -> None:
    require_tool("git")
    monkeypatch.setattr(git, "LS_REMOTE_TIMEOUT", 1.0)
    hung_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):  # git's request; never an answer
            pass
        hung_up.set()  # the client closed the connection: git was killed
        writer.close()

    async def main() -> str:
        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            with pytest.raises(GitError) as failed:
                await ls_remote(f"git://127.0.0.1:{port}/app.git", GitAuth())
            await asyncio.wait_for(hung_up.wait(), 10)
        finally:
            server.close()
            await server.wait_closed()
        return str(failed.value)

    assert asyncio.run(main()) == "git ls-remote timed out after 1 s"
