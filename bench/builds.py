"""The builds section (``python -m bench.run --config builds``): how soon an automated build makes a ``git push``
pullable, and how many builds a server finishes per minute with four running at once. Dockyard only: the reference
registry builds nothing.

Everything is real: ``dockyard serve`` with authentication and its default executor (buildah, the sandbox the host
allows), a ``git daemon`` on loopback, and a base image (Debian's busybox-static with its applets) built with
buildah and pushed into Dockyard first. A repository is linked to the git repository with one branch rule; each
measured build is a commit pushed with the git CLI followed by the signed GitHub push payload a git host would
send (the clock starts before ``git push``); the image is pullable when ``GET /v2/<repo>/manifests/<tag>`` answers
200 (polled every 100 ms).

- **cold**: the first build on a fresh server: buildah's storage and cache are empty, the base is fetched.
- **warm**: later commits to the same branch: the base is in buildah's storage (median of ``rounds``).
- **concurrent**: ``parallel`` branches pushed at once into a namespace limited to four running builds
  (``build_namespace_concurrency=4``); builds per minute = builds / (last pullable − first push).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.clients.conftest import make_containers_env
from tests.support.gitrepo import GitServer, GitWork
from tests.support.hub_api import People, Person, create_repository
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

BASE_REPO = "bench/base"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CGROUP_PARENT = "dockyard-bench-builds"
CONCURRENT = 4
DOCKERFILE = (
    "FROM {host}/" + BASE_REPO + ":1\n"
    "COPY message.txt /message.txt\n"
    'RUN echo "built from $(cat /message.txt)" > /built.txt\n'
)
HEADER = ("measure", "Dockyard (median)", "min", "max")
METHOD = [
    "git push → pullable: from just before `git push` (the commit is made first) to the first 200 on "
    "GET /v2/<repo>/manifests/<tag>, polled every 100 ms; the push payload is delivered right after the push.",
    "cold: the first build on a fresh server (buildah's storage empty); warm: later commits, median.",
    f"concurrent: branches pushed together into a namespace with build_namespace_concurrency={CONCURRENT}.",
    "The Dockerfile: FROM a busybox base in Dockyard, COPY one file, RUN a shell line that writes a file.",
]


@dataclass
class BuildsResult:
    cold: float | None = None
    warm: list[float] = field(default_factory=list)
    parallel_builds: int = 0
    parallel_seconds: float | None = None
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _log(message: str) -> None:
    print(f"[bench builds] {message}", flush=True)


def _push_base(server: DockyardServer, root: Path) -> None:
    env = make_containers_env(root / "containers", server)
    buildah = env.tool("buildah")
    busybox = Path(require_tool("busybox")).resolve()
    ctr = buildah.out("from", "scratch")
    buildah.run("copy", ctr, str(busybox), "/bin/busybox")
    buildah.run("run", "--isolation", "chroot", ctr, "--", "/bin/busybox", "--install", "-s", "/bin")
    buildah.run("config", "--cmd", '["/bin/sh"]', "--env", "PATH=/bin", ctr)
    buildah.run("commit", "-q", "--rm", ctr, "localhost/bench-base:1")
    buildah.run(
        "push",
        "--tls-verify=false",
        "--creds",
        f"admin:{DockyardServer.ADMIN_PASSWORD}",
        "localhost/bench-base:1",
        f"docker://{server.host}/{BASE_REPO}:1",
    )


class Linked:
    """A repository linked to a git repository, with the rule ``/^(.+)$/`` → tag ``{\\1}`` (branch name = tag)."""

    def __init__(self, admin: Person, anonymous: httpx.Client, work: GitWork, name: str, host: str) -> None:
        self.admin, self.anonymous, self.work, self.host = admin, anonymous, work, host
        self.repo, self.base = f"admin/{name}", f"/api/v2/repositories/admin/{name}"
        create_repository(admin, name)
        link = admin.api.post(f"{self.base}/build-link", json={"url": work.url})
        if link.status_code != 201:
            raise RuntimeError(f"build link: {link.status_code} {link.text}")
        self.secret: str = link.json()["webhook_secret"]
        rule = admin.api.post(
            f"{self.base}/build-rules", json={"source_type": "Branch", "source_name": "/^(b[0-9]+)$/", "tag": "{\\1}"}
        )
        if rule.status_code != 201:
            raise RuntimeError(f"build rule: {rule.status_code} {rule.text}")

    def push(self, branch: str, message: str, when: int) -> tuple[float, str]:
        """Commit, push, deliver the payload; (the moment before the push, the build's id)."""
        self.work.git("checkout", "-q", "-B", branch)
        (self.work.path / "Dockerfile").write_text(DOCKERFILE.format(host=self.host))
        (self.work.path / "message.txt").write_text(message + "\n")
        self.work.git("add", "Dockerfile", "message.txt")
        date = f"@{when} +0000"
        self.work.env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
        self.work.git("commit", "-q", "-m", message)
        commit = self.work.git("rev-parse", "HEAD")
        started = time.monotonic()
        self.work.git("push", "-q", "origin", f"HEAD:refs/heads/{branch}")
        body = json.dumps(
            {"ref": f"refs/heads/{branch}", "after": commit, "head_commit": {"id": commit, "message": message}}
        ).encode()
        signature = hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        delivered = self.anonymous.post(
            f"{self.base}/build-link/webhook",
            content=body,
            headers={"X-GitHub-Event": "push", "X-Hub-Signature-256": f"sha256={signature}"},
        )
        if delivered.status_code != 202:
            raise RuntimeError(f"push payload: {delivered.status_code} {delivered.text}")
        (build,) = delivered.json()["builds"]
        return started, str(build)

    def pullable(self, tag: str, digest_before: str | None, deadline: float) -> float:
        """Poll until ``tag`` names a manifest other than ``digest_before``; the moment it did."""
        while time.monotonic() < deadline:
            answer = self.admin.registry.get(f"/v2/{self.repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            if answer.status_code == 200 and answer.headers.get("docker-content-digest") != digest_before:
                return time.monotonic()
            time.sleep(0.1)
        raise RuntimeError(f"{self.repo}:{tag} was not pullable in time")

    def failed(self, build: str) -> str | None:
        view: dict[str, Any] = self.admin.api.get(f"{self.base}/builds/{build}").json()
        if view.get("state") in ("failed", "cancelled"):
            log = self.admin.api.get(f"{self.base}/builds/{build}/logs").text
            return f"build {build} {view['state']}: {view.get('error')}; log tail: {log[-600:]}"
        return None

    def digest(self, tag: str) -> str | None:
        answer = self.admin.registry.head(f"/v2/{self.repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        return answer.headers.get("docker-content-digest") if answer.status_code == 200 else None


def _one(linked: Linked, branch: str, message: str, when: int, timeout: float) -> float:
    before = linked.digest(branch)
    started, build = linked.push(branch, message, when)
    try:
        done = linked.pullable(branch, before, time.monotonic() + timeout)
    except RuntimeError:
        raise RuntimeError(linked.failed(build) or f"build {build} did not finish in {timeout:.0f} s") from None
    return done - started


def run_builds(workdir: Path, rounds: int, parallel: int, timeout: float = 900.0) -> BuildsResult:
    for tool in ("buildah", "busybox", "git", "unshare", "prlimit"):
        require_tool(tool)
    result = BuildsResult()
    env = {
        "DOCKYARD_WORKERS": str(max(1, min(os.cpu_count() or 1, 8))),
        "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
        "DOCKYARD_BUILD_CGROUP_PARENT": CGROUP_PARENT,
        "DOCKYARD_BUILD_NAMESPACE_CONCURRENCY": str(CONCURRENT),
    }
    server = DockyardServer(workdir / "data", secure=True, env=env, embedded=True)
    git = GitServer(workdir / "git")
    server.start()
    git.start()
    people = People.open(server)
    try:
        _log("building and pushing the busybox base image")
        _push_base(server, workdir)
        admin = people.admin()
        linked = Linked(admin, people.anonymous, git.repository("app"), "app", server.host)
        _log("cold build")
        result.cold = _one(linked, "b0", "cold", 1_700_000_000, timeout)
        for n in range(rounds):
            _log(f"warm build {n + 1}/{rounds}")
            result.warm.append(_one(linked, "b0", f"warm {n}", 1_700_000_100 + n, timeout))
        _log(f"{parallel} builds, {CONCURRENT} at once")
        many = Linked(admin, people.anonymous, git.repository("many"), "many", server.host)
        pushed = [(f"b{i + 1}", *many.push(f"b{i + 1}", f"parallel {i}", 1_700_001_000 + i)) for i in range(parallel)]
        first = min(started for _, started, _ in pushed)
        deadline = time.monotonic() + timeout * parallel / CONCURRENT
        last = first
        for branch, _, build in pushed:
            try:
                last = max(last, many.pullable(branch, None, deadline))
            except RuntimeError:
                raise RuntimeError(many.failed(build) or f"build {build} did not finish in time") from None
        result.parallel_builds, result.parallel_seconds = parallel, last - first
    except RuntimeError as exc:
        result.errors.append(str(exc))
    finally:
        people.close()
        git.stop()
        server.stop()
        for hierarchy in Path("/sys/fs/cgroup").iterdir():
            with contextlib.suppress(OSError):
                (hierarchy / CGROUP_PARENT).rmdir()
    return result


def rows(result: BuildsResult) -> list[tuple[str, str, str, str]]:
    def seconds(value: float | None) -> str:
        return "—" if value is None else f"{value:.1f}"

    warm = result.warm
    per_minute = result.parallel_builds / result.parallel_seconds * 60 if result.parallel_seconds else None
    return [
        ("git push → pullable, cold (s)", seconds(result.cold), "—", "—"),
        (
            f"git push → pullable, warm (s; {len(warm)} builds)",
            seconds(statistics.median(warm) if warm else None),
            seconds(min(warm) if warm else None),
            seconds(max(warm) if warm else None),
        ),
        (
            f"{result.parallel_builds} builds, {CONCURRENT} at once: first push → last pullable (s)",
            seconds(result.parallel_seconds),
            "—",
            "—",
        ),
        (f"builds per minute, {CONCURRENT} at once", "—" if per_minute is None else f"{per_minute:.1f}", "—", "—"),
    ]
