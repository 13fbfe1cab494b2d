"""A build executor for the pipeline's tests (``build_executor = "tests.support.build_executor:GitTarExecutor"``): no
buildah, but honest about everything the pipeline relies on. It clones the spec's git URL with the git CLI at the spec's
commit (with the spec's credentials, through ``dockyard.builds.git``), reads the Dockerfile at the rule's path, makes
one layer of the build context's files (a deterministic tar: the commit's time as every mtime) and pushes config, layer
and manifest to Dockyard over HTTP with the spec's bearer token under every tag of the spec.

The Dockerfile is a tiny language of its own: ``FROM [--flag] ref [AS name]`` (a base: resolved to a digest on this
registry with the token when it can be, else reported with an empty digest; a name without "/" is a stage), ``ECHO
text`` (logs the text with ``${ARG}`` build args expanded — as a real ``RUN echo`` would), ``SLEEP seconds`` (stops
early, failing, when cancelled), ``FAIL reason``; anything else is logged and ignored."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
import re
import tarfile
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx

from dockyard.builds.executor import BuildFailed, BuildResult, BuildSpec, LogSink, StageSink
from dockyard.builds.git import GitAuth, git_environment
from dockyard.core.subprocesses import spawn
from dockyard.settings import Settings

# The settings of a server whose builds run here, fast: jobs and events looked for often, build_* webhook deliveries
# allowed to a receiver on loopback, links due for polling looked for every 5 s.
PIPELINE_ENV = {
    "DOCKYARD_BUILD_EXECUTOR": "tests.support.build_executor:GitTarExecutor",
    "DOCKYARD_JOBS_POLL_SECONDS": "0.2",
    "DOCKYARD_WEBHOOK_DISPATCH_POLL_SECONDS": "0.1",
    "DOCKYARD_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    "DOCKYARD_BUILD_POLL_CHECK_SECONDS": "5",
}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _git(auth: GitAuth, *args: str, cwd: Path) -> str:
    with git_environment(auth) as env:
        process = await spawn(["git", *args], cwd=cwd, env=env)
        out, err = await process.communicate()
    if process.returncode != 0:
        raise BuildFailed(f"git {args[0]} failed: {err.decode(errors='replace').strip()[-200:]}", "cloning")
    return out.decode().strip()


def layer_of(root: Path, mtime: int) -> bytes:
    """The files under ``root`` (without ``.git``) as a tar, sorted, owned by root, every mtime ``mtime``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if relative.parts[0] == ".git" or not path.is_file():
                continue
            info = tarfile.TarInfo(str(relative))
            data = path.read_bytes()
            info.size, info.mtime, info.mode, info.uid, info.gid = len(data), mtime, 0o644, 0, 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class GitTarExecutor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def run(self, spec: BuildSpec, log: LogSink, stage: StageSink, cancelled: asyncio.Event) -> BuildResult:
        source = spec.source
        auth = GitAuth(source.https_username, source.https_token, source.ssh_private_key, source.ssh_known_hosts)
        with tempfile.TemporaryDirectory(prefix="dockyard-test-build-") as tmp:
            work = Path(tmp) / "src"
            await stage("cloning")
            await log(f"cloning {source.url} at {source.commit}")
            await _git(auth, "clone", "--quiet", "--no-checkout", "--", source.url, str(work), cwd=Path(tmp))
            await _git(auth, "checkout", "--quiet", "--detach", source.commit, cwd=work)
            commit = await _git(auth, "rev-parse", "HEAD", cwd=work)
            when = int(await _git(auth, "show", "-s", "--format=%ct", "HEAD", cwd=work))
            await stage("building")
            context = (work / spec.context).resolve()
            dockerfile = context / spec.dockerfile
            if not dockerfile.is_file():
                raise BuildFailed(f"no Dockerfile at {spec.dockerfile}", "building")
            bases = await self._steps(spec, dockerfile.read_text(), log, cancelled)
            layer_tar = layer_of(context, when)
            await stage("pushing")
            return await self._push(spec, layer_tar, when, commit, bases, log)

    async def _steps(self, spec: BuildSpec, text: str, log: LogSink, cancelled: asyncio.Event) -> list[tuple[str, str]]:
        lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        bases: list[tuple[str, str]] = []
        for number, line in enumerate(lines, 1):
            instruction, _, rest = line.partition(" ")
            await log(f"STEP {number}/{len(lines)}: {line}")
            if instruction == "FROM":
                image = next(word for word in rest.split() if not word.startswith("--"))
                if "/" in image:  # not a stage name
                    bases.append((image, await self._resolve(spec, image)))
                    await log(f"base {image} -> {bases[-1][1] or 'not pullable'}")
            elif instruction == "ECHO":
                await log(re.sub(r"\$\{(\w+)\}", lambda m: spec.build_args.get(m.group(1), ""), rest))
            elif instruction == "SLEEP":
                deadline = asyncio.get_running_loop().time() + float(rest)
                while asyncio.get_running_loop().time() < deadline:
                    if cancelled.is_set():
                        raise BuildFailed("cancelled", "building")
                    await asyncio.sleep(0.1)
            elif instruction == "FAIL":
                raise BuildFailed(rest or "the Dockerfile says so", "building")
            if cancelled.is_set():
                raise BuildFailed("cancelled", "building")
        return bases

    def _client(self, spec: BuildSpec) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=spec.target.base_url, headers={"Authorization": f"Bearer {spec.target.token}"}, timeout=30
        )

    async def _resolve(self, spec: BuildSpec, reference: str) -> str:
        host = spec.target.base_url.split("://", 1)[-1]
        if not reference.startswith(host + "/"):
            return ""
        name, _, tag = reference[len(host) + 1 :].rpartition(":")
        async with self._client(spec) as client:
            response = await client.head(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
        return response.headers.get("docker-content-digest", "") if response.status_code == 200 else ""

    async def _push(
        self, spec: BuildSpec, layer_tar: bytes, when: int, commit: str, bases: list[tuple[str, str]], log: LogSink
    ) -> BuildResult:
        layer = gzip.compress(layer_tar, mtime=0)
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "created": datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z"),
                "config": {"Labels": {"org.opencontainers.image.revision": commit}},
                "rootfs": {"type": "layers", "diff_ids": [_digest(layer_tar)]},
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
                "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        repository = spec.target.repository
        async with self._client(spec) as client:
            for blob in (layer, config):
                response = await client.post(
                    f"/v2/{repository}/blobs/uploads/", params={"digest": _digest(blob)}, content=blob
                )
                if response.status_code != 201:
                    raise BuildFailed(f"blob push refused: {response.status_code}", "pushing")
            for tag in spec.target.tags:
                response = await client.put(
                    f"/v2/{repository}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
                )
                if response.status_code != 201:
                    raise BuildFailed(f"manifest push refused: {response.status_code}", "pushing")
                await log(f"pushed {repository}:{tag}")
        return BuildResult(_digest(manifest), OCI_MANIFEST, len(manifest), commit, tuple(bases))
