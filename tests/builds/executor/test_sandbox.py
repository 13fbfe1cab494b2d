"""The build sandbox: what a Dockerfile's RUN steps cannot do, and the limits that stop a build. Each build fails
(or succeeds harmlessly) with a clear line in its log, and leaves the host and the server as they were."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Unpack

import pytest

from dockyard.builds.buildah import BuildahExecutor
from dockyard.builds.executor import BuildLimits
from tests.builds.executor.conftest import (
    BASE_REPO,
    BASE_TAG,
    TIMINGS,
    Outcome,
    SpecOptions,
    assert_nothing_left,
    run_build,
    spec_for,
)
from tests.support.gitrepo import GitServer
from tests.support.oci import unique_name
from tests.support.server import DockyardServer

pytestmark = [pytest.mark.clients, pytest.mark.embedded_only, pytest.mark.usefixtures("base_digest")]


def build(
    executor: BuildahExecutor,
    registry: DockyardServer,
    git_server: GitServer,
    run: str,
    files: dict[str, str] | None = None,
    cancel_when: str | None = None,
    **kwargs: Unpack[SpecOptions],
) -> Outcome:
    """Build ``FROM`` the busybox base with one ``RUN`` step (after COPYing ``files``)."""
    work = git_server.repository(unique_name("sbx").replace("/", "-"))
    copies = "".join(f"COPY {name} /{name}\n" for name in files or {})
    dockerfile = f"FROM {BASE_REPO}:{BASE_TAG}\n{copies}RUN {run}\n"
    commit = work.commit({"Dockerfile": dockerfile, **(files or {})})
    spec = spec_for(registry, work.url, commit, unique_name("sandbox"), **kwargs)
    outcome = run_build(executor, spec, cancel_when=cancel_when)
    assert spec.target.token not in outcome.text
    assert_nothing_left(executor, registry)
    return outcome


def test_run_network_denied_unless_allowed(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    # busybox's nc: its static wget crashes in NSS code inside a bare chroot.
    host, port = registry.host.split(":")
    request = f"GET /readyz HTTP/1.1\\r\\nHost: {registry.host}\\r\\nConnection: close\\r\\n\\r\\n"
    # stdin stays open a moment: the server drops a request whose client half-closed before the answer.
    run = f"(printf '{request}'; sleep 3) | nc -w 5 {host} {port} > /reply; head -1 /reply; grep -q ' 200 ' /reply"
    denied = build(executor, registry, git_server, run)
    assert denied.failure is not None, denied.text
    assert denied.failure.stage == "building"
    assert "RUN network denied (own network namespace)" in denied.text
    assert "Network is unreachable" in denied.text, denied.text
    allowed = build(executor, registry, git_server, run, network=True)
    assert allowed.failure is None, allowed.text
    assert "RUN network allowed" in allowed.text


def test_host_shadow_is_not_readable(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    run = (
        "cat /etc/shadow; cat /../../../../etc/shadow; cat /proc/1/root/etc/shadow; "
        "ls /proc/1/root/ || echo PROC1-ROOT-DENIED"
    )
    own = "root:IMAGE-OWN-SHADOW:19000:0:99999:7:::\n"
    outcome = build(executor, registry, git_server, run, files={"etc/shadow": own})
    assert outcome.failure is None, outcome.text
    assert outcome.log.count(own.strip()) == 2, outcome.text  # / and /../../.. are both the image's root
    assert "PROC1-ROOT-DENIED" in outcome.text
    host_lines = [line for line in Path("/etc/shadow").read_text().splitlines() if line.strip()]
    assert host_lines
    assert not any(line in outcome.text for line in host_lines)


def test_writes_outside_the_root_do_not_reach_the_host(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    marker = f"dockyard-escape-{uuid.uuid4().hex}"
    run = (
        f"echo pwned > /../../../tmp/{marker}; echo pwned > /proc/1/root/tmp/{marker}; "
        f"echo pwned > /proc/1/cwd/{marker}; mkdir -p /tmp && echo inside > /tmp/{marker}; "
        f"mknod /disk b 8 0 || echo MKNOD-REFUSED; true"
    )
    outcome = build(executor, registry, git_server, run)
    assert outcome.failure is None, outcome.text
    assert "MKNOD-REFUSED" in outcome.text
    for place in (Path("/tmp"), Path("/"), executor.work_root):
        assert not (place / marker).exists()
    assert not list(executor.work_root.rglob(marker))  # nor anywhere under the build's own directories


def test_fork_bomb_stopped_by_pids_limit(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    outcome = build(
        executor,
        registry,
        git_server,
        "bomb() { bomb | bomb & }; bomb; sleep 600",
        limits=BuildLimits(pids=128, wall_seconds=120),
    )
    assert outcome.failure is not None, outcome.text
    assert outcome.failure.reason.startswith("pids limit reached (128 processes)"), outcome.text
    assert "build stopped: pids limit reached" in outcome.text
    assert outcome.seconds < 60
    TIMINGS.info(f"fork bomb stopped after {outcome.seconds:.1f} s")


def test_a_run_that_fails_at_once_on_a_refused_fork_names_the_pids_limit(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    """The RUN exits the moment its forks are refused, before the watchdog's next look (every 0.25 s): the pids
    limit is still the reason given, not the RUN's exit status."""
    outcome = build(
        executor,
        registry,
        git_server,
        "for i in $(seq 64); do sleep 60 & done; exit 7",
        limits=BuildLimits(pids=16, wall_seconds=120),
    )
    assert outcome.failure is not None, outcome.text
    assert outcome.failure.reason.startswith("pids limit reached (16 processes)"), outcome.text
    assert "build stopped: pids limit reached" in outcome.text
    assert outcome.seconds < 60


def test_disk_fill_stopped(executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer) -> None:
    run = "i=0; while dd if=/dev/zero of=/fill$i bs=1M count=16 2>/dev/null; do i=$((i+1)); done; sleep 600"
    outcome = build(executor, registry, git_server, run, limits=BuildLimits(disk_bytes=256 * 1024**2))
    assert outcome.failure is not None, outcome.text
    assert outcome.failure.reason.startswith("disk limit reached"), outcome.text
    assert outcome.seconds < 60
    TIMINGS.info(f"disk fill stopped after {outcome.seconds:.1f} s")


def test_memory_limit(executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer) -> None:
    run = "dd if=/dev/zero of=/dev/null bs=900M count=1"
    outcome = build(executor, registry, git_server, run, limits=BuildLimits(memory_bytes=256 * 1024**2))
    assert outcome.failure is not None, outcome.text
    assert "memory limit reached (268435456 bytes)" in outcome.text, outcome.text


def test_wall_time_limit(executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer) -> None:
    outcome = build(executor, registry, git_server, "sleep 600", limits=BuildLimits(wall_seconds=12))
    assert outcome.failure is not None, outcome.text
    assert outcome.failure.stage == "building"
    assert outcome.failure.reason == "wall time limit reached (12 s)"
    assert "build stopped: wall time limit reached (12 s)" in outcome.text
    assert outcome.seconds < 20


def test_cancel_stops_a_running_build(
    executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    started = time.monotonic()
    outcome = build(executor, registry, git_server, "echo now-sleeping; sleep 600", cancel_when="now-sleeping")
    assert outcome.failure is not None, outcome.text
    assert (outcome.failure.reason, outcome.failure.stage) == ("cancelled", "building")
    assert outcome.seconds < 5, outcome.seconds  # from the cancel to run() returning, cleanup included
    assert time.monotonic() - started < 60
    TIMINGS.info(f"cancel took {outcome.seconds:.2f} s")


def test_without_cgroups_a_cancel_still_ends_every_process(
    rlimits_executor: BuildahExecutor, registry: DockyardServer, git_server: GitServer
) -> None:
    """Without cgroups the build's PID namespace is what contains it: background processes of a RUN step die
    with the build."""
    outcome = build(
        rlimits_executor,
        registry,
        git_server,
        "sleep 600 & sleep 601 & echo now-sleeping; wait",
        cancel_when="now-sleeping",
    )
    assert "sandbox: rlimits; memory not limited (no writable cgroup)" in outcome.text, outcome.text
    assert outcome.failure is not None
    assert outcome.failure.reason == "cancelled"
    assert outcome.seconds < 5
