"""The boundary between the build pipeline and whatever runs a build: what a build is asked to do
(:class:`BuildSpec`), what it reports back (:class:`BuildResult`), and the :class:`BuildExecutor` protocol.

The pipeline (links, rules, triggers, the job, events, history, logs) owns everything before and after; an
executor owns only "check out this commit, build this Dockerfile under these limits, push the result to these
references". Executors know nothing of the database: they get plain values and a short-lived registry token, so a
builder on another machine needs no database rows and no storage credentials beyond what the spec carries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class BuildLimits:
    """Per-build limits. ``None`` = no limit of that kind. How each is enforced (cgroup v2 or rlimits) is said in
    the build's log by the executor."""

    wall_seconds: float = 3600.0
    cpu_seconds: float | None = None  # CPU time (rlimit) or a cgroup cpu.max quota equivalent
    memory_bytes: int | None = 2 * 1024**3
    pids: int | None = 1024
    disk_bytes: int | None = 10 * 1024**3  # the build's working and storage directories together


@dataclass(frozen=True)
class SourceCheckout:
    """Where the source comes from: a git URL, the commit to build (a full sha), and optional credentials.

    ``https_token`` is sent as HTTP basic auth for HTTPS remotes; ``ssh_private_key`` (OpenSSH PEM) is used for SSH
    remotes with host-key checking relaxed to the link's pinned ``ssh_known_hosts`` line when given. Both are
    already unsealed; an executor must never write them to the log."""

    url: str
    commit: str
    ref: str = ""  # the branch or tag name that led to this commit, for the log only
    https_token: str | None = None
    https_username: str | None = None
    ssh_private_key: str | None = None
    ssh_known_hosts: str | None = None


@dataclass(frozen=True)
class RegistryTarget:
    """Where the image goes: the Dockyard ``/v2`` base URL (``http://127.0.0.1:5000``), the repository name
    (``ns/repo``), the tags to push, and a short-lived bearer token allowed to pull the repository's bases and push
    to the repository."""

    base_url: str
    repository: str
    tags: Sequence[str]
    token: str
    tls_verify: bool = True


@dataclass(frozen=True)
class BuildSpec:
    build_id: str
    source: SourceCheckout
    target: RegistryTarget
    dockerfile: str = "Dockerfile"  # relative to the context
    context: str = "."  # relative to the repository root
    build_args: Mapping[str, str] = field(default_factory=dict)  # secret ones already unsealed; never logged
    secret_build_args: frozenset[str] = frozenset()  # names in build_args whose values must not be logged
    network: bool = False  # may RUN steps reach the network
    use_cache: bool = False
    cache_key: str = ""  # e.g. the repository name: builds sharing a key share a layer cache when use_cache
    timestamp: int | None = None  # seconds since the epoch (the commit time) for reproducible output
    limits: BuildLimits = field(default_factory=BuildLimits)


@dataclass(frozen=True)
class BuildResult:
    """What was pushed: the image's manifest digest (every tag points to it), its media type, its size, the
    commit actually built, and the base images it was built ``FROM``, resolved to digests
    (``(reference as written, digest)``) for provenance."""

    digest: str
    media_type: str
    size: int
    commit: str
    base_images: Sequence[tuple[str, str]] = ()


class BuildFailed(Exception):
    """The build did not produce an image. ``reason`` is one short line for the build record (the log has the
    rest); ``stage`` is where it stopped: ``cloning``, ``building`` or ``pushing``."""

    def __init__(self, reason: str, stage: str = "building") -> None:
        super().__init__(reason)
        self.reason = reason
        self.stage = stage


LogSink = Callable[[str], Awaitable[None]]
"""Receives the build's output line by line (no trailing newline), in order, as it happens."""

StageSink = Callable[[str], Awaitable[None]]
"""Told when the build enters a stage: ``cloning``, ``building``, ``pushing``."""


class BuildExecutor(Protocol):
    async def run(self, spec: BuildSpec, log: LogSink, stage: StageSink, cancelled: asyncio.Event) -> BuildResult:
        """Run one build to completion. Raises :class:`BuildFailed` when it does not produce an image (a failed
        step, a limit reached, a push refused), ``asyncio.CancelledError`` is not used for cancellation: when
        ``cancelled`` is set the executor stops the build within seconds, cleans up and raises
        ``BuildFailed("cancelled", stage)``. Leaves nothing behind on the host but the cache (when asked)."""
        ...
