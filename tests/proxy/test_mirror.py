"""Transparent mirror mode: with ``mirror_namespace`` set, Dockyard is the ``[[registry.mirror]]`` of docker.io
for podman; ``docker.io/library/<name>`` pulls through the proxy namespace (a local docker-registry stands in for
docker.io), while local namespaces stay local."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import ACCEPT_ALL_MANIFESTS, Tool, make_containers_env
from tests.proxy.conftest import ReferenceRegistry, add_proxy
from tests.support.checks import unique
from tests.support.hub import HubAdmin
from tests.support.images import build_image_layout
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

pytestmark = pytest.mark.clients


@pytest.fixture
def mirror_ns() -> str:
    return unique("dockerhub")


@pytest.fixture
def mirror(tmp_path: Path, mirror_ns: str) -> Iterator[DockyardServer]:
    server = DockyardServer(tmp_path / "mirror" / "data", secure=True, env={"DOCKYARD_MIRROR_NAMESPACE": mirror_ns})
    server.data_dir.parent.mkdir(parents=True)
    server.start()
    yield server
    server.stop()


def test_podman_pulls_docker_io_through_the_mirror(
    reference: ReferenceRegistry, mirror: DockyardServer, mirror_ns: str, tmp_path: Path
) -> None:
    name = unique("img")
    layout = build_image_layout(tmp_path / "layout", name, busybox=Path(require_tool("busybox")).resolve())
    tools = make_containers_env(tmp_path / "containers", mirror)
    skopeo = tools.tool("skopeo")
    hub = HubAdmin(mirror)
    try:
        add_proxy(hub, reference.url, namespace=mirror_ns)
        local_org = hub.org("admin", "local")
    finally:
        hub.close()
    for path in (f"library/{name}", f"{local_org}/{name}"):
        skopeo.run(
            "copy",
            "--preserve-digests",
            "--dest-tls-verify=false",
            layout.ref,
            f"docker://{reference.host}/{path}:latest",
        )

    # A mirror is asked for docker.io's names as they are, without the proxy namespace.
    response = httpx.get(f"{mirror.url}/v2/library/{name}/manifests/latest", headers={"Accept": ACCEPT_ALL_MANIFESTS})
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == layout.top_digest
    # A local organization's names are never served from the mirror, although the upstream has this one.
    local = httpx.get(f"{mirror.url}/v2/{local_org}/{name}/manifests/latest", auth=("admin", mirror.ADMIN_PASSWORD))
    assert local.status_code == 404, local.text

    conf = tmp_path / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = ["docker.io"]\n\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n\n'
        f'[[registry.mirror]]\nlocation = "{mirror.host}"\ninsecure = true\n'
    )
    podman = Tool(require_tool("podman"), {**tools.env, "CONTAINERS_REGISTRIES_CONF": str(conf)}, tools.root)
    image_id = podman.out("pull", "-q", f"docker.io/library/{name}:latest")
    assert image_id == layout.images[0].config_digest.removeprefix("sha256:")
    (info,) = podman.json("image", "inspect", image_id)
    assert f"docker.io/library/{name}:latest" in info["RepoTags"]
    # Served from the proxy namespace's repository, which now holds the image.
    cached = httpx.get(
        f"{mirror.url}/v2/{mirror_ns}/library/{name}/manifests/{layout.top_digest}",
        headers={"Accept": ACCEPT_ALL_MANIFESTS},
    )
    assert cached.status_code == 200
