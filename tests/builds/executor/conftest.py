"""Fixtures for the buildah executor's acceptance tests: a real Dockyard with authentication on, a busybox base
image built by the test (Debian's busybox-static, its applets installed) and pushed into it, a loopback git
server, push tokens minted at ``/v2/token``, and :func:`run_build`, which runs one build and records its log,
stages and duration.

Every test checks afterwards that the build left nothing behind: no directory under the work dir but the cache,
no process started from it, no cgroup, and that the server still answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

import httpx
import pytest

from dockyard.builds.buildah import BuildahExecutor
from dockyard.builds.executor import BuildFailed, BuildLimits, BuildResult, BuildSpec, RegistryTarget, SourceCheckout
from dockyard.settings import Settings
from tests.clients.conftest import make_containers_env
from tests.support.gitrepo import GitServer
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

BASE_REPO = "builds/base"
BASE_TAG = "1"
# One parent per test process: the test files of this folder may run side by side (two pytest-xdist workers, two
# backend passes), and each checks that no build cgroup is left under its parent.
CGROUP_PARENT = f"dockyard-test-builds-{os.getpid()}"
# Measured durations (build times, how fast a limit stopped a build): `-o log_cli=true --log-cli-level=INFO`.
TIMINGS = logging.getLogger("tests.builds.timings")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockyardServer]:
    for tool in ("buildah", "skopeo", "busybox", "git", "unshare", "prlimit"):
        require_tool(tool)
    srv = DockyardServer(tmp_path_factory.mktemp("builds-registry") / "data", secure=True)
    srv.start()
    yield srv
    srv.stop()


def admin_creds() -> str:
    return f"admin:{DockyardServer.ADMIN_PASSWORD}"


def mint_token(server: DockyardServer, *scopes: str) -> str:
    """A short-lived registry token for the administrator with these scopes, as the pipeline mints one."""
    response = httpx.get(
        f"{server.url}/v2/token",
        params=[("service", server.host), *(("scope", s) for s in scopes)],
        auth=("admin", DockyardServer.ADMIN_PASSWORD),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture(scope="module")
def base_digest(registry: DockyardServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    """``builds/base:1`` on the registry: busybox with its applets (``/bin/sh`` …); returns its digest."""
    root = tmp_path_factory.mktemp("base-image")
    env = make_containers_env(root / "containers", registry)
    buildah = env.tool("buildah")
    busybox = Path(require_tool("busybox")).resolve()
    ctr = buildah.out("from", "scratch")
    buildah.run("copy", ctr, str(busybox), "/bin/busybox")
    buildah.run("run", "--isolation", "chroot", ctr, "--", "/bin/busybox", "--install", "-s", "/bin")
    buildah.run("config", "--cmd", '["/bin/sh"]', "--env", "PATH=/bin", ctr)
    buildah.run("commit", "-q", "--rm", ctr, "localhost/busybox-base:1")
    digest_file = root / "digest"
    buildah.run(
        "push",
        "--tls-verify=false",
        "--creds",
        admin_creds(),
        "--digestfile",
        str(digest_file),
        "localhost/busybox-base:1",
        f"docker://{registry.host}/{BASE_REPO}:{BASE_TAG}",
    )
    return digest_file.read_text().strip()


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    srv = GitServer(tmp_path_factory.mktemp("git"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("build-work")


@pytest.fixture(scope="module")
def rlimits_executor(work_dir: Path) -> BuildahExecutor:
    """An executor as on a host without writable cgroups (the sandbox forced to rlimits)."""
    settings = Settings(data_dir=work_dir / "data", build_work_dir=work_dir / "builds-rlimits", build_sandbox="rlimits")
    return BuildahExecutor(settings)


@pytest.fixture(scope="module")
def executor(work_dir: Path) -> Iterator[BuildahExecutor]:
    settings = Settings(
        data_dir=work_dir / "data", build_work_dir=work_dir / "builds", build_cgroup_parent=CGROUP_PARENT
    )
    yield BuildahExecutor(settings)
    for hierarchy in Path("/sys/fs/cgroup").iterdir():  # the (empty) parent cgroups the builds were made under
        with contextlib.suppress(OSError):
            (hierarchy / CGROUP_PARENT).rmdir()


@dataclass
class Outcome:
    result: BuildResult | None
    failure: BuildFailed | None
    log: list[str] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return "\n".join(self.log)


class SpecOptions(TypedDict, total=False):
    """What a test may set of a ``BuildSpec`` beyond its source and target (the fields with a default)."""

    dockerfile: str
    context: str
    build_args: Mapping[str, str]
    secret_build_args: frozenset[str]
    network: bool
    use_cache: bool
    cache_key: str
    timestamp: int | None
    limits: BuildLimits


def spec_for(
    registry: DockyardServer,
    url: str,
    commit: str,
    repository: str,
    tags: tuple[str, ...] = ("latest",),
    **kwargs: Unpack[SpecOptions],
) -> BuildSpec:
    token = mint_token(registry, f"repository:{repository}:pull,push", f"repository:{BASE_REPO}:pull")
    target = RegistryTarget(registry.url, repository, tags, token, tls_verify=False)
    return BuildSpec(f"b-{commit[:8]}", SourceCheckout(url, commit, ref="main"), target, **kwargs)


def run_build(
    executor: BuildahExecutor, spec: BuildSpec, cancel_when: str | None = None, cancel_after: float = 0.0
) -> Outcome:
    """Run one build; with ``cancel_when``, set ``cancelled`` ``cancel_after`` seconds after a log line contains it
    (the outcome's ``seconds`` then counts from the cancel)."""
    outcome = Outcome(None, None)

    async def main() -> None:
        cancelled = asyncio.Event()
        loop = asyncio.get_running_loop()
        start = [time.monotonic()]

        async def log(line: str) -> None:
            outcome.log.append(line)
            if cancel_when is not None and cancel_when in line and not cancelled.is_set():

                def fire() -> None:
                    start[0] = time.monotonic()
                    cancelled.set()

                loop.call_later(cancel_after, fire)

        async def stage(name: str) -> None:
            outcome.stages.append(name)

        try:
            outcome.result = await executor.run(spec, log, stage, cancelled)
        except BuildFailed as exc:
            outcome.failure = exc
        outcome.seconds = time.monotonic() - start[0]

    asyncio.run(main())
    return outcome


def assert_nothing_left(executor: BuildahExecutor, registry: DockyardServer) -> None:
    """No build directory, process or cgroup survives the build; the server still serves."""
    left = [p.name for p in executor.work_root.iterdir() if p.name != "cache"] if executor.work_root.exists() else []
    assert left == [], left
    marker = str(executor.work_root)
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            # A RUN step's processes are chrooted into the build's storage: their root gives them away.
            places = [os.readlink(f"/proc/{pid}/root"), os.readlink(f"/proc/{pid}/cwd")]
        except OSError:
            continue
        assert not any(marker in p for p in [cmdline, *places]), (pid, cmdline, places)
    for hierarchy in ("pids", "memory", "cpuacct", "unified"):
        parent = Path("/sys/fs/cgroup") / hierarchy / CGROUP_PARENT
        if parent.exists():
            assert [p.name for p in parent.iterdir() if p.is_dir()] == [], parent
    assert httpx.get(f"{registry.url}/readyz", timeout=10).status_code == 200
