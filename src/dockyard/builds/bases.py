"""The base images a build will pull from this Dockyard, found before it runs, so that its registry token can grant
``pull`` on exactly those (a bearer token's grant is its claims: nothing beyond them is allowed).

``fetch_dockerfile`` fetches only the commit's Dockerfile and its committer time (a shallow fetch of the commit, else
of its ref, without checkout; the time becomes the build's ``--timestamp``) and ``parse_from`` reads its ``FROM``
lines (``--platform`` flags, ``AS`` names, stage references, ``scratch`` and ``ARG`` defaults and build args in
``$VAR`` / ``${VAR}`` handled). ``pullable`` keeps those the link's creator may pull now (the operator's links: all;
a creator who is gone: public ones), so a repository's administrator cannot use a build to read a private image they
could not pull themselves. Best effort: a Dockerfile that cannot be fetched grants only the bases the rule's previous
build used (``build_bases``).
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select

from dockyard.authz.permissions import Level, repository_levels
from dockyard.authz.principal import ANONYMOUS, OPEN, Principal, PrincipalKind
from dockyard.builds.git import GitAuth, git_environment
from dockyard.core.subprocesses import DEVNULL, spawn
from dockyard.db.engine import Database
from dockyard.models import Account

FETCH_TIMEOUT = 60.0
MAX_DOCKERFILE = 1024 * 1024
_VAR = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _expand(word: str, values: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1) or m.group(2), ""), word)


def parse_from(text: str, build_args: Mapping[str, str] | None = None) -> list[str]:
    """The image references of a Dockerfile's ``FROM`` lines, in order, without stage names and ``scratch``."""
    args = dict(build_args or {})
    defaults: dict[str, str] = {}
    stages: set[str] = set()
    found: list[str] = []
    joined = re.sub(r"\\\r?\n", " ", text)
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, rest = line.partition(" ")
        keyword = instruction.upper()
        if keyword == "ARG" and not found:
            name, _, value = rest.strip().partition("=")
            defaults[name.strip()] = value.strip().strip('"')
        if keyword != "FROM":
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        if not words:
            continue
        image = _expand(words[0], {**defaults, **args})
        if len(words) >= 3 and words[1].upper() == "AS":
            stages.add(words[2].lower())
        if image and image.lower() != "scratch" and image.lower() not in stages and image not in found:
            found.append(image)
    return found


def repository_of(reference: str, registry_host: str) -> tuple[str, str] | None:
    """(repository, tag) of a reference to an image on this Dockyard (``host/ns/repo[:tag][@digest]``); the tag is
    "" for a reference pinned by digest alone. None for another registry's."""
    host, _, rest = reference.partition("/")
    if host != registry_host or not rest:
        return None
    name, _, digest = rest.partition("@")
    if ":" in name.rsplit("/", 1)[-1]:
        repository, tag = name.rsplit(":", 1)
        return repository, tag
    return name, "" if digest else "latest"


async def _git(env: dict[str, str], cwd: str, *args: str) -> tuple[int, bytes]:
    process = await spawn(["git", *args], cwd=cwd, env=env, stderr=DEVNULL)
    try:
        out, _ = await asyncio.wait_for(process.communicate(), FETCH_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        return 1, b""
    return process.returncode or 0, out


@dataclass(frozen=True, slots=True)
class CommitFacts:
    """What a build needs to know of its commit before it runs: the Dockerfile's text and the committer time
    (seconds since the epoch); either None when it could not be read."""

    dockerfile: str | None = None
    time: int | None = None


async def fetch_dockerfile(url: str, auth: GitAuth, commit: str, ref: str, path: str) -> CommitFacts:
    """The Dockerfile at ``path`` in ``commit`` and the commit's time (fetched shallowly, without checkout)."""
    with tempfile.TemporaryDirectory(prefix="dockyard-dockerfile-") as tmp, git_environment(auth) as env:
        if (await _git(env, tmp, "init", "-q"))[0] != 0:
            return CommitFacts()
        fetched = (await _git(env, tmp, "fetch", "-q", "--depth=1", "--", url, commit))[0] == 0
        if not fetched and (await _git(env, tmp, "fetch", "-q", "--depth=1", "--", url, ref))[0] != 0:
            return CommitFacts()
        target = commit if fetched else "FETCH_HEAD"
        code, out = await _git(env, tmp, "show", f"{target}:{path}")
        when_code, when = await _git(env, tmp, "show", "-s", "--format=%ct", target)
    moment = int(when) if when_code == 0 and when.strip().isdigit() and fetched else None
    text = out.decode(errors="replace") if code == 0 and len(out) <= MAX_DOCKERFILE else None
    return CommitFacts(text, moment)


async def pullable(db: Database, created_by: str, names: Iterable[str]) -> set[str]:
    """Those of repositories ``names`` the link's creator may pull now."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    async with db.read() as conn:
        principal: Principal = ANONYMOUS
        if created_by == OPEN.audit_name:
            principal = OPEN
        elif created_by:
            account = (
                await conn.execute(
                    select(Account.id, Account.name, Account.kind, Account.is_admin, Account.disabled).where(
                        Account.name == created_by
                    )
                )
            ).first()
            if account is not None and not account.disabled and account.kind in ("user", "robot"):
                principal = Principal(cast(PrincipalKind, account.kind), account.id, account.name, account.is_admin)
        levels = await repository_levels(conn, principal, wanted)
    return {name for name, level in levels.items() if level >= Level.READ}
