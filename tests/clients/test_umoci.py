"""An image built by umoci (init, new, insert, config) goes through Dockyard with skopeo unchanged, and umoci
unpacks what comes back to the same root filesystem."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.clients.conftest import Tool, assert_blob, docker_ref, get_manifest
from tests.support.images import blob_digests, index_entry
from tests.support.oci import OCI_MANIFEST
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients


def test_umoci_image_round_trip(
    umoci: Tool,
    skopeo: Tool,
    server: DockyardServer,
    client: httpx.Client,
    repo: str,
    seed: str,
    busybox: Path,
    tmp_path: Path,
) -> None:
    layout = tmp_path / "umoci-layout"
    image = f"{layout}:base"
    umoci.run("init", "--layout", str(layout))
    umoci.run("new", "--image", image)
    umoci.run("insert", "--image", image, str(busybox), "/bin/busybox")
    marker = tmp_path / "marker"
    marker.write_text(f"{seed}\n")
    umoci.run("insert", "--image", image, str(marker), "/etc/dockyard-seed")
    umoci.run(
        "config", "--image", image, "--architecture", "amd64", "--os", "linux",
        "--config.cmd", "/bin/busybox", "--config.cmd", "sh", "--config.label", f"dockyard.test={seed}",
    )  # fmt: skip
    umoci.run("gc", "--layout", str(layout))  # drop the blobs of the intermediate steps
    entry = index_entry(layout, "base")
    assert entry["mediaType"] == OCI_MANIFEST

    skopeo.run("copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{image}", docker_ref(server, repo, "u1"))
    response = get_manifest(client, repo, "u1")
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == entry["digest"]
    for digest in blob_digests(layout) - {entry["digest"]}:
        assert_blob(client, repo, digest)

    out = tmp_path / "pulled"
    skopeo.run("copy", "--preserve-digests", "--src-tls-verify=false", docker_ref(server, repo, "u1"), f"oci:{out}:u1")
    assert index_entry(out, "u1")["digest"] == entry["digest"]
    assert blob_digests(out) == blob_digests(layout)
    bundle = tmp_path / "bundle"
    umoci.run("unpack", "--image", f"{out}:u1", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "bin" / "busybox").read_bytes() == busybox.read_bytes()
    assert (rootfs / "etc" / "dockyard-seed").read_text() == f"{seed}\n"
