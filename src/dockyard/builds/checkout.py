"""Check out exactly one commit of a git remote with the ``git`` CLI, without putting credentials anywhere others
can read them.

* HTTPS token: git asks a ``GIT_ASKPASS`` script, which prints the user name and token from two environment
  variables of the git process (``/proc/<pid>/environ`` is readable by its owner only); the token is never in
  argv, the URL, ``.git/config`` or the log.
* SSH key: written to a 0600 file in the build's private directory and used through ``GIT_SSH_COMMAND``
  (``IdentitiesOnly``, ``BatchMode``); host keys are checked against the link's pinned ``known_hosts`` line when
  given, else the first key seen is accepted for this one connection (a fresh ``known_hosts`` file).
* No user or system git configuration is read (``GIT_CONFIG_NOSYSTEM``, a private ``HOME``), no prompt is shown.

The commit is fetched by its sha (``--depth 1``) where the server allows it, else every branch and tag is
fetched and the commit checked out from them. Submodules are not fetched.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import stat
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.builds.executor import SourceCheckout
from dockyard.core.subprocesses import DEVNULL, spawn

_SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
# Network remotes only: http(s)://, ssh://, git://, or scp-like user@host:path. Never a local path, file:// or
# ext:: (which would read the builder's own files or run commands).
_REMOTE = re.compile(r"^(https?|ssh|git)://[^/\s]+|^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^/]")
_URL_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]+@")
_ASKPASS = """#!/bin/sh
case "$1" in
  Username*|username*) printf '%s\\n' "$DOCKYARD_GIT_USERNAME" ;;
  *) printf '%s\\n' "$DOCKYARD_GIT_TOKEN" ;;
esac
"""

Runner = Callable[[list[str], Mapping[str, str], Path], Awaitable[int]]
"""Runs one command (argv, environment, cwd), streaming its output to the build log; returns its exit code."""


class CheckoutFailed(Exception):
    """The commit could not be checked out; the message is one line for the build record."""


@dataclass(frozen=True)
class CheckedOut:
    directory: Path
    commit: str
    commit_time: int  # committer time, seconds since the epoch


def redact_url(url: str) -> str:
    """The URL with any ``user:password@`` removed, for the log."""
    return _URL_CREDENTIALS.sub("", url)


def git_environment(source: SourceCheckout, private_dir: Path, base_env: Mapping[str, str]) -> dict[str, str]:
    """The environment git runs with: credentials through askpass / ``GIT_SSH_COMMAND``, nothing of the host's
    git configuration, no prompts. Writes the helper files into ``private_dir`` (mode 0700)."""
    private_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    home = private_dir / "home"
    home.mkdir(mode=0o700, exist_ok=True)
    env = {k: v for k, v in base_env.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        LC_ALL="C",
        GIT_ALLOW_PROTOCOL="http:https:ssh:git",
        GIT_PROTOCOL_FROM_USER="0",
    )
    env.pop("SSH_AUTH_SOCK", None)
    if source.https_token:
        askpass = private_dir / "askpass.sh"
        askpass.write_text(_ASKPASS)
        askpass.chmod(stat.S_IRWXU)
        env.update(
            GIT_ASKPASS=str(askpass),
            DOCKYARD_GIT_USERNAME=source.https_username or "x-access-token",
            DOCKYARD_GIT_TOKEN=source.https_token,
        )
    if source.ssh_private_key:
        key = private_dir / "id_key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(source.ssh_private_key.rstrip("\n") + "\n")
        known = private_dir / "known_hosts"
        known.write_text((source.ssh_known_hosts or "").rstrip("\n") + "\n" if source.ssh_known_hosts else "")
        checking = "yes" if source.ssh_known_hosts else "accept-new"
        env["GIT_SSH_COMMAND"] = " ".join(
            [
                "ssh",
                "-F",
                "/dev/null",
                "-i",
                shlex.quote(str(key)),
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "BatchMode=yes",
                "-o",
                f"UserKnownHostsFile={shlex.quote(str(known))}",
                "-o",
                f"StrictHostKeyChecking={checking}",
            ]
        )
    return env


async def checkout(
    source: SourceCheckout, directory: Path, private_dir: Path, run: Runner, base_env: Mapping[str, str]
) -> CheckedOut:
    """Fetch ``source.commit`` into ``directory`` and check it out (detached). Raises :class:`CheckoutFailed`."""
    commit = source.commit.lower()
    if not _SHA.match(commit):
        raise CheckoutFailed(f"not a full commit sha: {source.commit!r}")
    if not _REMOTE.match(source.url) or source.url.startswith("-"):
        raise CheckoutFailed(f"not a network git URL: {redact_url(source.url)!r}")
    env = git_environment(source, private_dir, base_env)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    quiet = ["-c", "credential.helper=", "-c", "advice.detachedHead=false"]

    async def git(*args: str) -> int:
        return await run(["git", *quiet, *args], env, directory)

    if await git("init", "-q") != 0:
        raise CheckoutFailed("git init failed")
    if await git("remote", "add", "origin", source.url) != 0:
        raise CheckoutFailed("git remote add failed")
    if await git("fetch", "--no-tags", "--depth", "1", "origin", commit) != 0:
        # Servers that do not serve unadvertised commits (git daemon's default): fetch branches and tags.
        refspecs = ["+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"]
        if await git("fetch", "--no-tags", "origin", *refspecs) != 0:
            raise CheckoutFailed(f"cannot fetch from {redact_url(source.url)}")
    if await git("checkout", "-q", "--detach", commit) != 0:
        raise CheckoutFailed(f"commit {commit} not found in {redact_url(source.url)}")
    proc = await spawn(["git", "log", "-1", "--format=%ct", "HEAD"], cwd=directory, env=env, stderr=DEVNULL)
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        raise CheckoutFailed("cannot read the commit time")
    return CheckedOut(directory, commit, int(out.decode().strip()))
