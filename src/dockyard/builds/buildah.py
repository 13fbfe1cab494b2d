"""The buildah executor: check out one commit, build its Dockerfile with ``buildah build --isolation chroot`` in
a sandbox, push the image to Dockyard, and report what was pushed.

Per build, under ``<build_work_dir>/<build id>-<random>/`` (mode 0700): the checkout, buildah's storage and run
roots (a fresh pair, or the layer cache of ``spec.cache_key`` under ``<build_work_dir>/cache/`` when
``spec.use_cache``; builds sharing a cache take turns on it), private containers/registries/storage configuration,
and the git credential helpers. Everything but the cache is removed afterwards, once nothing is mounted under it.

Order: ``cloning`` (git, :mod:`dockyard.builds.checkout`) → ``building`` (base images resolved to digests on the
registry and pulled by digest through a :class:`~dockyard.builds.registry_gate.RegistryGate`; then the build with
``--pull=never`` and ``--timestamp`` = the commit time unless the spec gives one, in a network namespace of its
own unless ``spec.network``) → ``pushing`` (``buildah push`` to an OCI layout in the build's directory, then its
blobs and manifest uploaded with the token under every tag: ``dockyard.builds.oci_push``). Every process runs under
the build's :class:`~dockyard.builds.sandbox.Confinement` as PID 1 of a PID namespace (``unshare --pid --fork
--kill-child --mount-proc``), so one kill ends it all.

A watchdog stops the build (and says why in the log) on cancel, wall time, disk use of the build's directories,
CPU time (cgroup modes) and the first fork the pids limit refuses. Secrets (the registry token, the git token,
secret build args) never reach argv (secret build args are passed by name, their values through the environment)
and are replaced by ``***`` in every logged line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from dockyard.builds.checkout import CheckoutFailed, checkout, redact_url
from dockyard.builds.dockerfile import from_references, split_reference
from dockyard.builds.executor import BuildFailed, BuildLimits, BuildResult, BuildSpec, LogSink, StageSink
from dockyard.builds.oci_push import push_layout
from dockyard.builds.registry_gate import RegistryGate
from dockyard.builds.sandbox import Confinement, Sandbox, tree_bytes
from dockyard.core.subprocesses import PIPE, STDOUT, Child, spawn
from dockyard.settings import Settings

_MANIFEST_ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
_OWN_ENV = {"PATH", "HOME", "TMPDIR", "XDG_RUNTIME_DIR", "LC_ALL", "BUILDAH_ISOLATION"}
_TICK = 0.25


class _Stopped(Exception):
    pass


class _Build:
    """The state of one build while it runs: directories, confinement, the running process, the watchdog."""

    def __init__(self, executor: BuildahExecutor, spec: BuildSpec, log: LogSink, cancelled: asyncio.Event) -> None:
        self.x = executor
        self.spec = spec
        self.log_sink = log
        self.cancelled = cancelled
        self.stage = "cloning"
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", spec.build_id)[:64] + "-" + secrets.token_hex(4)
        self.dir = executor.work_root / self.name
        self.private = self.dir / "private"
        self.src = self.dir / "src"
        self.started = time.monotonic()
        self.stopped: str | None = None
        self.process: Child | None = None
        self.confinement: Confinement | None = None
        self.cache_dir: Path | None = None
        self.cache_lock: int | None = None
        self.cache_baseline = 0
        host = urlsplit(spec.target.base_url).netloc
        self.registry_host = host
        secrets_: list[str] = [spec.target.token]
        secrets_ += [v for k, v in spec.build_args.items() if k in spec.secret_build_args and v]
        secrets_ += [s for s in (spec.source.https_token, spec.source.ssh_private_key) if s]
        with contextlib.suppress(ValueError):
            secrets_ += [urlsplit(spec.source.url).password or ""]  # a token written into the URL itself
        self.secrets = sorted({s for s in secrets_ if len(s) >= 4}, key=len, reverse=True)

    # -- output ---------------------------------------------------------------------------------------------

    def redact(self, line: str) -> str:
        for secret in self.secrets:
            line = line.replace(secret, "***")
        return line

    async def log(self, line: str) -> None:
        await self.log_sink(self.redact(line))

    # -- limits -----------------------------------------------------------------------------------------------

    def disk_used(self) -> int:
        """Bytes the build occupies: its own directory, plus what it has added to the layer cache it uses."""
        used = tree_bytes(self.dir)
        if self.cache_dir is not None:
            used += max(0, tree_bytes(self.cache_dir) - self.cache_baseline)
        return used

    async def watchdog(self) -> None:
        limits = self.spec.limits
        next_disk = 0.0
        while self.stopped is None:
            reason = None
            now = time.monotonic()
            if self.cancelled.is_set():
                reason = "cancelled"
            elif now - self.started > limits.wall_seconds:
                reason = f"wall time limit reached ({limits.wall_seconds:g} s)"
            elif self.confinement is not None and self.confinement.pids_refused():
                reason = f"pids limit reached ({limits.pids} processes): a fork was refused"
            elif (
                self.confinement is not None
                and limits.cpu_seconds
                and self.confinement.cpu_seconds_used() > limits.cpu_seconds
            ):
                reason = f"cpu time limit reached ({limits.cpu_seconds:g} s)"
            elif limits.disk_bytes and now >= next_disk:
                next_disk = now + 1.0
                used = await asyncio.to_thread(self.disk_used)
                if used > limits.disk_bytes:
                    reason = f"disk limit reached ({used} > {limits.disk_bytes} bytes in the build's directories)"
            if reason is not None:
                await self.stop(reason)
                return
            await asyncio.sleep(_TICK)

    async def stop(self, reason: str) -> None:
        if self.stopped is not None:
            return
        self.stopped = reason
        await self.log(f"build stopped: {reason}")
        self.kill()
        if self.confinement is not None:
            await asyncio.to_thread(self.confinement.kill_all)

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def check(self) -> None:
        if self.stopped is not None:
            raise _Stopped(self.stopped)

    # -- processes --------------------------------------------------------------------------------------------

    async def exec(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        *,
        isolate_network: bool = False,
        capture: list[str] | None = None,
        quiet: bool = False,
    ) -> int:
        """Run one command confined, streaming its output to the log; its exit status (after a stop: raises)."""
        self.check()
        assert self.confinement is not None
        ns = ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--mount-proc"]
        if isolate_network:
            ns.append("--net")
        full = self.confinement.wrap([*ns, "--", *argv])
        self.process = await spawn(
            full, stdout=PIPE, stderr=STDOUT, env=env, cwd=cwd, start_new_session=True, limit=1024 * 1024
        )
        assert self.process.stdout is not None
        try:
            while True:
                try:
                    raw = await self.process.stdout.readline()
                except ValueError:  # a line over the limit: read what is there
                    raw = await self.process.stdout.read(1024 * 1024)
                if not raw:
                    break
                line = raw.decode("utf-8", "replace").rstrip("\r\n").split("\r")[-1]
                if capture is not None:
                    capture.append(line)
                if not quiet:
                    await self.log(line)
            status = await self.process.wait()
        finally:
            self.kill()
            self.process = None
        self.check()
        return status

    def buildah_env(self) -> dict[str, str]:
        conf = self.private / "containers"
        return {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "HOME": str(self.private / "home"),
            "TMPDIR": str(self.dir / "tmp"),
            "XDG_RUNTIME_DIR": str(self.dir / "xdg"),
            "LC_ALL": "C",
            "BUILDAH_ISOLATION": "chroot",
            "CONTAINERS_CONF": str(conf / "containers.conf"),
            "CONTAINERS_REGISTRIES_CONF": str(conf / "registries.conf"),
            "CONTAINERS_STORAGE_CONF": str(conf / "storage.conf"),
            "REGISTRY_AUTH_FILE": str(conf / "auth.json"),
        }

    def buildah(self, *args: str) -> list[str]:
        storage = self.cache_dir or self.dir
        return [
            "buildah",
            "--root",
            str(storage / "storage"),
            "--runroot",
            str(self.dir / "run"),
            "--storage-driver",
            self.x.storage_driver,
            *args,
        ]

    # -- setup and cleanup ------------------------------------------------------------------------------------

    def prepare(self) -> None:
        for d in (self.dir, self.private, self.private / "home", self.dir / "tmp", self.dir / "xdg", self.dir / "run"):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        conf = self.private / "containers"
        conf.mkdir(mode=0o700)
        policy = {"default": [{"type": "insecureAcceptAnything"}]}
        (self.private / "home" / ".config" / "containers").mkdir(parents=True)
        (self.private / "home" / ".config" / "containers" / "policy.json").write_text(json.dumps(policy))
        (conf / "containers.conf").write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\n'
            f'tmp_dir = "{self.dir / "tmp"}"\nimage_copy_tmp_dir = "{self.dir / "tmp"}"\n'
        )
        # Short names (FROM ns/base) mean this Dockyard.
        (conf / "registries.conf").write_text(
            f'unqualified-search-registries = ["{self.registry_host}"]\nshort-name-mode = "permissive"\n'
        )
        storage = self.cache_dir or self.dir
        (conf / "storage.conf").write_text(
            f'[storage]\ndriver = "{self.x.storage_driver}"\ngraphroot = "{storage / "storage"}"\n'
            f'runroot = "{self.dir / "run"}"\n'
        )
        (conf / "auth.json").write_text('{"auths": {}}')

    async def take_cache(self) -> None:
        """Use the layer cache of the spec's cache key, waiting (cancellably) while another build holds it."""
        key = hashlib.sha256(self.spec.cache_key.encode()).hexdigest()[:32]
        self.cache_dir = self.x.work_root / "cache" / key
        self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.cache_dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        announced = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not announced:
                    await self.log("waiting for the layer cache (another build of the same repository uses it)")
                    announced = True
                self.check()
                await asyncio.sleep(_TICK)
        self.cache_lock = fd
        self.cache_baseline = await asyncio.to_thread(tree_bytes, self.cache_dir)

    def mounted_under(self) -> list[str]:
        prefix = str(self.dir) + "/"
        found = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    found.append(point)
        return sorted(found, key=len, reverse=True)

    async def cleanup(self) -> None:
        self.kill()
        if self.confinement is not None:
            await asyncio.to_thread(self.confinement.remove)
        if self.cache_dir is not None and self.dir.exists():
            # Keep the image and its intermediate layers (the cache: removing the image would remove them too);
            # drop containers a stopped build left.
            self.stopped = None
            self.confinement = Confinement("rlimits", BuildLimits(memory_bytes=None, pids=None, disk_bytes=None))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.exec(self.buildah("rm", "--all"), self.buildah_env(), self.dir, quiet=True), 60
                )
        if self.cache_lock is not None:
            os.close(self.cache_lock)
        for point in self.mounted_under():
            proc = await spawn(["umount", "-l", point], stdout=None, stderr=None)
            await proc.wait()
        if self.mounted_under():
            await self.log(f"cleanup: {self.dir} still has mounts; left in place")
            return
        await asyncio.to_thread(shutil.rmtree, self.dir, True)

    def admit(self, gate: RegistryGate) -> None:
        """Give buildah the gate's credentials (the build's private auth.json, mode 0600)."""
        self.secrets.append(gate.auth)
        auth = self.private / "containers" / "auth.json"
        fd = os.open(auth, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"auths": {gate.host: {"auth": gate.auth}}}, fh)

    @property
    def local_image(self) -> str:
        # In a cache, one name that each build moves to its image (so names do not pile up).
        name = "cache" if self.cache_dir is not None else self.name.lower()
        return f"localhost/dockyard-build/{name}:latest"

    # -- the stages -------------------------------------------------------------------------------------------

    def inside(self, base: Path, relative: str, what: str) -> Path:
        path = (base / relative).resolve()
        if not path.is_relative_to(self.src.resolve()):
            raise BuildFailed(f"the {what} {relative!r} is outside the repository", "building")
        return path

    async def resolve_bases(
        self, client: httpx.AsyncClient, gate: RegistryGate, bases: list[str]
    ) -> list[tuple[str, str]]:
        """Pull each base by digest (this Dockyard's through the gate) and give it the name the Dockerfile uses."""
        resolved: list[tuple[str, str]] = []
        env = self.buildah_env()
        for reference in bases:
            host, repository, ref = split_reference(reference, self.registry_host)
            if host == self.registry_host:
                digest = ref if ref.startswith("sha256:") else ""
                if not digest:
                    response = await client.head(
                        f"/v2/{repository}/manifests/{ref}", headers={"Accept": _MANIFEST_ACCEPT}
                    )
                    digest = response.headers.get("docker-content-digest", "")
                    if response.status_code != 200 or not digest:
                        await self.log(f"base image {reference}: not found on the registry ({response.status_code})")
                        raise BuildFailed(f"base image {reference} not found", "building")
                source = f"docker://{gate.host}/{repository}@{digest}"
                pull = self.buildah("pull", "--tls-verify=false", "--quiet", source)
            else:
                digest = ""
                pull = self.buildah("pull", "--quiet", f"docker://{reference}")
            out: list[str] = []
            if await self.exec(pull, env, self.dir, capture=out) != 0:
                raise BuildFailed(f"cannot pull base image {reference}", "building")
            image_id = out[-1].strip() if out else ""
            name = f"{host}/{repository}:{ref if not ref.startswith('sha256:') else 'pinned'}"
            if host == self.registry_host:
                # The name the Dockerfile uses, and not the gate's (its random port would end up in the image's
                # org.opencontainers.image.base.name annotation and change the digest from build to build).
                if await self.exec(self.buildah("tag", image_id, name), env, self.dir) != 0:
                    raise BuildFailed(f"cannot name base image {reference}", "building")
                for stale in await self.image_names(image_id):
                    if stale.startswith(f"{gate.host}/"):  # absent when the image was already stored (a cache)
                        await self.exec(self.buildah("rmi", stale), env, self.dir, quiet=True)
            if not digest:
                inspect: list[str] = []
                await self.exec(
                    self.buildah("inspect", "--type", "image", image_id), env, self.dir, capture=inspect, quiet=True
                )
                digest = json.loads("\n".join(inspect)).get("FromImageDigest", "")
            await self.log(f"base image {reference} = {digest}")
            resolved.append((reference, digest))
        return resolved

    async def image_names(self, image_id: str) -> list[str]:
        out: list[str] = []
        await self.exec(
            self.buildah("images", "--json", "--no-trunc"), self.buildah_env(), self.dir, capture=out, quiet=True
        )
        try:
            images = json.loads("\n".join(out) or "[]")
        except ValueError:
            return []
        for image in images:
            if str(image.get("id", "")).removeprefix("sha256:") == image_id.removeprefix("sha256:"):
                return [str(name) for name in image.get("names") or []]
        return []

    async def build(self, timestamp: int) -> None:
        spec = self.spec
        context = self.inside(self.src, spec.context, "build context")
        dockerfile = self.inside(context, spec.dockerfile, "Dockerfile")
        env = self.buildah_env()
        args = [
            "build",
            "--isolation",
            "chroot",
            "--pull=never",
            "--format",
            "oci",
            # A layer per step, cached or not: without --layers buildah squashes the steps into one layer, and a
            # cached build would not give the uncached build's digest.
            "--layers",
            "--timestamp",
            str(timestamp),
            "-f",
            str(dockerfile),
            "-t",
            self.local_image,
        ]
        if "SOURCE_DATE_EPOCH" not in spec.build_args:
            # BuildKit's convention: a Dockerfile that declares ARG SOURCE_DATE_EPOCH gets the build's timestamp.
            args += ["--build-arg", f"SOURCE_DATE_EPOCH={timestamp}"]
        for key, value in spec.build_args.items():
            if key not in spec.secret_build_args:
                args += ["--build-arg", f"{key}={value}"]
                continue
            if key not in _OWN_ENV and not key.startswith(("CONTAINERS_", "REGISTRY_")):
                env[key] = value  # by name on the command line, the value from the environment
                args += ["--build-arg", key]
            else:
                args += ["--build-arg", f"{key}={value}"]
            # Also a build secret (RUN --mount=type=secret,id=KEY): a build arg a RUN step uses is recorded in
            # the image's history by buildah, as by docker build; a secret mount is not.
            secret_file = self.private / "secrets" / key
            secret_file.parent.mkdir(mode=0o700, exist_ok=True)
            fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(value)
            # type=file: without it buildah reads an environment variable when one has the id's name (as here).
            args += ["--secret", f"id={key},src={secret_file},type=file"]
        if spec.secret_build_args & spec.build_args.keys():
            await self.log(
                "secret build args: kept out of this log; a RUN step that uses one as an ARG records its value in "
                "the image's history, use RUN --mount=type=secret,id=NAME (/run/secrets/NAME) instead"
            )
        network = "allowed" if spec.network else "denied (own network namespace)"
        await self.log(f"building {spec.dockerfile} in {spec.context} at timestamp {timestamp}; RUN network {network}")
        status = await self.exec(self.buildah(*args, str(context)), env, self.src, isolate_network=not spec.network)
        if status != 0:
            oom = self.confinement.oom_kills() if self.confinement else 0
            if oom:
                await self.log(f"memory limit reached ({spec.limits.memory_bytes} bytes): {oom} process(es) killed")
                raise BuildFailed("memory limit reached", "building")
            if self.confinement is not None and self.confinement.pids_refused():
                # A RUN whose fork was refused may fail at once, before the watchdog's next look: the limit is
                # still why the build failed.
                await self.stop(f"pids limit reached ({spec.limits.pids} processes): a fork was refused")
                self.check()
            raise BuildFailed(f"buildah build exited with status {status}", "building")

    async def push(self, client: httpx.AsyncClient, mount_from: Sequence[str]) -> tuple[str, str, int]:
        """Write the image to an OCI layout, then push that with the token (``dockyard.builds.oci_push``)."""
        spec = self.spec
        tags = list(spec.target.tags)
        if not tags:
            raise BuildFailed("no tags to push", "pushing")
        layout = self.dir / "layout"
        write = self.buildah("push", "--quiet", self.local_image, f"oci:{layout}")
        if await self.exec(write, self.buildah_env(), self.dir) != 0:
            raise BuildFailed("writing the image failed", "pushing")
        digest, media_type, size = await push_layout(client, layout, spec.target.repository, tags, mount_from)
        await self.log(f"pushed {spec.target.repository}@{digest} as {', '.join(tags)}")
        return digest, media_type, size


class BuildahExecutor:
    """Runs builds with buildah on this host (see the module docstring). One instance serves many builds at once."""

    def __init__(self, settings: Settings) -> None:
        self.work_root = settings.effective_build_work_dir
        self.storage_driver = settings.build_storage_driver
        self.sandbox = Sandbox(settings.build_cgroup_parent, settings.build_sandbox)

    async def run(self, spec: BuildSpec, log: LogSink, stage: StageSink, cancelled: asyncio.Event) -> BuildResult:
        b = _Build(self, spec, log, cancelled)
        self.work_root.mkdir(mode=0o700, parents=True, exist_ok=True)
        watchdog = asyncio.create_task(b.watchdog())
        try:
            return await self._run(b, stage)
        except _Stopped as stopped:
            raise BuildFailed(str(stopped), b.stage) from None
        except BuildFailed as failed:
            if b.stopped is not None:
                raise BuildFailed(b.stopped, b.stage) from None
            await b.log(f"build failed: {failed.reason}")
            raise
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            await b.cleanup()

    async def _run(self, b: _Build, stage: StageSink) -> BuildResult:
        spec = b.spec
        if spec.use_cache and spec.cache_key:
            await b.take_cache()
        b.prepare()
        b.confinement = await asyncio.to_thread(self.sandbox.confine, b.name, spec.limits)
        await b.log(b.confinement.describe())
        await stage("cloning")
        ref = f" ({spec.source.ref})" if spec.source.ref else ""
        await b.log(f"cloning {redact_url(spec.source.url)} at {spec.source.commit}{ref}")
        try:
            done = await checkout(spec.source, b.src, b.private / "git", b.exec, b.buildah_env())
        except CheckoutFailed as exc:
            b.check()
            await b.log(f"checkout failed: {exc}")
            raise BuildFailed(str(exc), "cloning") from None
        b.stage = "building"
        await stage("building")
        dockerfile = b.inside(b.inside(b.src, spec.context, "build context"), spec.dockerfile, "Dockerfile")
        if not dockerfile.is_file():
            raise BuildFailed(f"no Dockerfile at {spec.context}/{spec.dockerfile}", "building")
        bases = from_references(dockerfile.read_text(errors="replace"), spec.build_args)
        headers = {"Authorization": f"Bearer {spec.target.token}"}
        async with httpx.AsyncClient(
            base_url=spec.target.base_url, headers=headers, verify=spec.target.tls_verify, timeout=60
        ) as client:
            async with RegistryGate(spec.target.base_url, spec.target.token, spec.target.tls_verify) as gate:
                b.admit(gate)
                resolved = await b.resolve_bases(client, gate, bases)
            # The gate is closed while RUN steps execute: a build allowed network cannot borrow the token.
            await b.build(spec.timestamp if spec.timestamp is not None else done.commit_time)
            b.stage = "pushing"
            await stage("pushing")
            mount_from = [
                repository
                for reference, _ in resolved
                for host, repository, _ in [split_reference(reference, b.registry_host)]
                if host == b.registry_host and repository != spec.target.repository
            ]
            digest, media_type, size = await b.push(client, mount_from)
        took = time.monotonic() - b.started
        await b.log(f"build succeeded in {took:.1f} s")
        return BuildResult(digest, media_type, size, done.commit, tuple(resolved))
