"""Fixtures for driving real registry clients (skopeo, podman, buildah, umoci) against the session server.

Every tool runs with an environment of its own under the test's ``tmp_path``: containers-storage with the vfs
driver (no overlay mounts or FUSE needed, even inside a container), containers.conf (cgroupfs, no event log,
private tmp dirs), a registries.conf that marks the test server insecure, an empty auth file, a permissive
policy.json (via a private HOME) and private TMPDIR/XDG_RUNTIME_DIR. podman and buildah never touch the machine's
own storage (/var/lib/containers/storage, /run/containers): their fixtures assert the graph root.

One thing c/image does not let a root caller redirect: its blob-info cache,
``/var/lib/containers/cache/blob-info-cache-v1.boltdb``, which remembers where blobs were seen and which
compressed blob matches which uncompressed layer. Tests must not depend on it: every test builds layers unique to
its seed, and skopeo copies that assert digests use ``--preserve-digests`` (so skopeo fails instead of swapping in
a differently compressed copy of a layer it remembers).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.images import Layout, build_image_layout, build_multiarch_layout
from tests.support.oci import DOCKER_LIST, DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, sha256, unique_name
from tests.support.server import DockyardServer, Server
from tests.support.tools import require_tool

TOOL_TIMEOUT = 120

# Variables of the caller's environment that would point the tools at another storage or config.
_DROPPED = (
    "CONTAINERS_STORAGE_CONF",
    "CONTAINERS_CONF",
    "CONTAINERS_REGISTRIES_CONF",
    "REGISTRY_AUTH_FILE",
    "DOCKER_CONFIG",
    "STORAGE_DRIVER",
    "STORAGE_OPTS",
    "BUILDAH_FORMAT",
    "BUILDAH_LAYERS",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_RUNTIME_DIR",
)


class ToolError(AssertionError):
    pass


@dataclass
class Tool:
    """One command-line tool bound to an isolated environment."""

    path: str
    env: dict[str, str]
    cwd: Path

    def run(self, *args: str, check: bool = True, timeout: float = TOOL_TIMEOUT) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [self.path, *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise ToolError(
                f"{Path(self.path).name} {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
            )
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout.strip()

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args).stdout)


@dataclass
class ContainersEnv:
    """The isolated configuration the container tools share within one test."""

    root: Path
    env: dict[str, str]
    graphroot: Path
    runroot: Path

    def tool(self, name: str) -> Tool:
        return Tool(require_tool(name), self.env, self.root)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def containers_env(tmp_path: Path, server: DockyardServer) -> ContainersEnv:
    return make_containers_env(tmp_path / "containers", server)


def make_containers_env(root: Path, server: Server) -> ContainersEnv:
    """An isolated HOME, storage, registries.conf and auth file for skopeo/podman/buildah against ``server``."""
    home = root / "home"
    graphroot, runroot, tmpdir = root / "storage", root / "run", root / "tmp"
    for d in (home, graphroot, runroot, tmpdir, root / "xdg-run"):
        d.mkdir(parents=True, exist_ok=True)
    policy = json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
    # c/image reads $HOME/.config/containers/policy.json before /etc/containers/policy.json, root or not.
    _write(home / ".config" / "containers" / "policy.json", policy)
    storage_conf = _write(
        root / "storage.conf",
        f'[storage]\ndriver = "vfs"\ngraphroot = "{graphroot}"\nrunroot = "{runroot}"\n',
    )
    containers_conf = _write(
        root / "containers.conf",
        "[engine]\n"
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "none"\n'
        f'tmp_dir = "{tmpdir / "libpod"}"\n'
        f'image_copy_tmp_dir = "{tmpdir}"\n',
    )
    registries_conf = _write(
        root / "registries.conf",
        f'unqualified-search-registries = []\n\n[[registry]]\nlocation = "{server.host}"\ninsecure = true\n',
    )
    auth = _write(root / "auth.json", '{"auths": {}}')
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED}
    env.update(
        HOME=str(home),
        TMPDIR=str(tmpdir),
        XDG_RUNTIME_DIR=str(root / "xdg-run"),
        CONTAINERS_STORAGE_CONF=str(storage_conf),
        CONTAINERS_CONF=str(containers_conf),
        CONTAINERS_REGISTRIES_CONF=str(registries_conf),
        REGISTRY_AUTH_FILE=str(auth),
        DOCKER_CONFIG=str(home / ".docker"),
        STORAGE_DRIVER="vfs",
        BUILDAH_ISOLATION="chroot",
    )
    return ContainersEnv(root, env, graphroot, runroot)


@pytest.fixture
def skopeo(containers_env: ContainersEnv) -> Tool:
    return containers_env.tool("skopeo")


@pytest.fixture
def podman(containers_env: ContainersEnv) -> Tool:
    tool = containers_env.tool("podman")
    store = tool.json("info", "--format", "json")["store"]
    # Never run against the machine's own container storage.
    assert store["graphRoot"] == str(containers_env.graphroot), store
    assert store["graphDriverName"] == "vfs", store
    return tool


@pytest.fixture
def buildah(containers_env: ContainersEnv) -> Tool:
    tool = containers_env.tool("buildah")
    store = tool.json("info")["store"]
    assert store["GraphRoot"] == str(containers_env.graphroot), store
    return tool


@pytest.fixture
def umoci(containers_env: ContainersEnv) -> Tool:
    return containers_env.tool("umoci")


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., DockyardServer]]:
    """Start servers of the test's own (for an empty catalog or other settings); all stopped at teardown."""
    started: list[DockyardServer] = []

    def make(env: dict[str, str] | None = None) -> DockyardServer:
        srv = DockyardServer(tmp_path / f"server-{len(started)}" / "data", env=env)
        srv.data_dir.parent.mkdir(parents=True)
        started.append(srv)
        srv.start()
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def repo() -> str:
    return unique_name("clients")


@pytest.fixture
def seed() -> str:
    return unique_name("s").split("/", 1)[1]


@pytest.fixture
def busybox() -> Path:
    """The busybox binary the images carry (busybox-static on Debian: a single self-contained file)."""
    return Path(require_tool("busybox")).resolve()


@pytest.fixture
def multiarch_layout(tmp_path: Path, seed: str, busybox: Path) -> Layout:
    """An OCI layout whose ``latest`` is an index of linux/amd64 (busybox) and linux/arm64/v8 (a stand-in)."""
    return build_multiarch_layout(tmp_path / "multiarch-layout", seed, busybox=busybox)


@pytest.fixture
def image_layout(tmp_path: Path, seed: str, busybox: Path) -> Layout:
    """An OCI layout whose ``latest`` is a single linux/amd64 image manifest."""
    return build_image_layout(tmp_path / "image-layout", seed, busybox=busybox)


def docker_ref(server: Server, repo: str, reference: str = "latest") -> str:
    sep = "@" if ":" in reference else ":"
    return f"docker://{server.host}/{repo}{sep}{reference}"


@dataclass(frozen=True)
class AccessRecord:
    method: str
    path: str
    status: int


def access_log(server: DockyardServer, repo: str) -> list[AccessRecord]:
    """The server's access-log records for requests under ``/v2/<repo>/``."""
    records: list[AccessRecord] = []
    prefix = f"/v2/{repo}/"
    for line in server.log_path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # the server's own output on stdout (what `dockyard serve` prints for people)
        if isinstance(doc, dict) and doc.get("logger") == "dockyard.access" and str(doc["path"]).startswith(prefix):
            records.append(AccessRecord(doc["method"], doc["path"], int(doc["status"])))
    return records


ACCEPT_ALL_MANIFESTS = ", ".join((OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def get_manifest(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    """GET a manifest the way a pulling client does (accepting every manifest kind)."""
    return client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": ACCEPT_ALL_MANIFESTS})


def assert_blob(client: httpx.Client, repo: str, digest: str, size: int | None = None) -> bytes:
    """The registry serves the blob and its bytes hash to ``digest``; returns them."""
    response = client.get(f"/v2/{repo}/blobs/{digest}")
    assert response.status_code == 200, (digest, response.text)
    assert sha256(response.content) == digest
    assert response.headers["docker-content-digest"] == digest
    if size is not None:
        assert len(response.content) == size
    return response.content
