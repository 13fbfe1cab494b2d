"""The pipeline's own use of git: which URLs a link may name, a deploy key for SSH links, and ``git ls-remote``
(polling, and resolving a ref to its head commit when a build starts without one).

Credentials never reach a command line (other users of the host can read those): an HTTPS token goes in through
``GIT_CONFIG_*`` environment variables as an ``http.extraHeader``, an SSH key through a private temporary file named
in ``GIT_SSH_COMMAND``. Only the ``http``, ``https``, ``ssh`` and ``git`` transports are allowed
(``GIT_ALLOW_PROTOCOL``): no ``ext::`` (which runs commands) and no local paths.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from dockyard.core.subprocesses import spawn
from dockyard.core.urls import split_url
from dockyard.errors import Invalid

ALLOWED_SCHEMES = ("http", "https", "ssh", "git")
_SCP_LIKE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$")  # git@github.com:owner/repo.git
LS_REMOTE_TIMEOUT = 60.0


class GitError(Exception):
    """A git command failed; ``message`` is one line, safe to show (no credentials)."""


@dataclass(frozen=True, slots=True)
class GitAuth:
    """Unsealed credentials of a link (never logged)."""

    https_username: str | None = None
    https_token: str | None = None
    ssh_private_key: str | None = None
    ssh_known_hosts: str | None = None


def is_ssh_url(url: str) -> bool:
    return url.startswith("ssh://") or _SCP_LIKE.match(url) is not None


def validate_git_url(url: str) -> str:
    """An ``http(s)://``, ``ssh://``, ``git://`` or ``user@host:path`` URL with a host and no credentials in it.
    Raises ``Invalid``."""
    if not url or len(url) > 2048 or url.startswith("-") or any(ord(c) < 33 for c in url):
        raise Invalid("build_link", "url must be a git URL of at most 2048 characters without spaces")
    if _SCP_LIKE.match(url) and "://" not in url:
        return url
    parts = split_url(url)
    if parts is None or parts.scheme not in ALLOWED_SCHEMES or not parts.hostname:
        raise Invalid("build_link", f"url must be a {', '.join(ALLOWED_SCHEMES)} URL with a host, or user@host:path")
    if parts.password or (parts.username and parts.scheme in ("http", "https")):
        raise Invalid("build_link", "put credentials in https_username/https_token, not in the URL")
    if parts.hostname.startswith("-") or (parts.username or "").startswith("-"):
        # ssh would read ``-oProxyCommand=…`` as an option (git refuses such hosts too: defence in depth)
        raise Invalid("build_link", "url's host and user must not start with '-'")
    return url


def new_deploy_key(comment: str) -> tuple[str, str]:
    """A fresh ed25519 key pair for an SSH link: (private key in OpenSSH PEM, public key line)."""
    from cryptography.hazmat.primitives import serialization  # not loaded by a server until a link needs a key
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, f"{public} {comment}"


@contextlib.contextmanager
def git_environment(auth: GitAuth) -> Iterator[dict[str, str]]:
    """The environment for a git command with ``auth``: no prompts, allowed transports only, the HTTPS token as a
    header in ``GIT_CONFIG_*``, the SSH key in a 0600 file removed afterwards."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": tempfile.gettempdir(),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": "http:https:ssh:git",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LC_ALL": "C",
    }
    config: list[tuple[str, str]] = []
    if auth.https_token:
        user = auth.https_username or "x-access-token"
        basic = base64.b64encode(f"{user}:{auth.https_token}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    env["GIT_CONFIG_COUNT"] = str(len(config))
    if not auth.ssh_private_key:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="dockyard-git-") as tmp:
        key_file = os.path.join(tmp, "key")
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(auth.ssh_private_key if auth.ssh_private_key.endswith("\n") else auth.ssh_private_key + "\n")
        options = ["-i", key_file, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes"]
        if auth.ssh_known_hosts:
            hosts_file = os.path.join(tmp, "known_hosts")
            with open(hosts_file, "w") as handle:
                handle.write(auth.ssh_known_hosts + "\n")
            options += ["-o", f"UserKnownHostsFile={hosts_file}", "-o", "StrictHostKeyChecking=yes"]
        else:
            options += ["-o", "StrictHostKeyChecking=accept-new", "-o", f"UserKnownHostsFile={tmp}/known_hosts"]
        env["GIT_SSH_COMMAND"] = "ssh " + " ".join(shlex.quote(o) for o in options)
        yield env


async def ls_remote(url: str, auth: GitAuth, *patterns: str) -> dict[str, str]:
    """``git ls-remote --heads --tags URL [patterns]`` as {full ref: sha} (annotated tags also as ``ref^{}``).
    Raises ``GitError``."""
    with git_environment(auth) as env:
        process = await spawn(["git", "ls-remote", "--heads", "--tags", "--", url, *patterns], env=env)
        try:
            out, err = await asyncio.wait_for(process.communicate(), LS_REMOTE_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise GitError(f"git ls-remote timed out after {LS_REMOTE_TIMEOUT:.0f} s") from None
    if process.returncode != 0:
        raise GitError(f"git ls-remote: {redact(_reason(err), auth)[:300]}")
    refs: dict[str, str] = {}
    for line in out.decode(errors="replace").splitlines():
        sha, _, ref = line.partition("\t")
        if ref and re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
            refs[ref] = sha
    return refs


def _reason(stderr: bytes) -> str:
    """The line of git's error output that says what went wrong: its last ``fatal:`` line (after it git may add
    hints, such as "Please make sure you have the correct access rights and the repository exists."), or else
    the last line."""
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("fatal:")]
    return (fatal or lines or ["failed"])[-1]


def redact(text: str, auth: GitAuth, extra: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret of ``auth`` (and the values of ``extra``) replaced by ``***``."""
    for secret in (auth.https_token, *(extra or {}).values()):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text
