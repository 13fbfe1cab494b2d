"""buildah against Dockyard: build from scratch and from an OCI layout, push (OCI and Docker schema 2) and a
multi-arch manifest list, then check through the registry API and pull back."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.clients.conftest import Tool, assert_blob, get_manifest
from tests.support.images import Layout, sha256_hex
from tests.support.oci import DOCKER_MANIFEST, OCI_MANIFEST, sha256
from tests.support.server import DockyardServer

pytestmark = pytest.mark.clients

NO_TLS = "--tls-verify=false"


def _scratch_image(buildah: Tool, name: str, arch: str, label: str, payload: Path) -> str:
    """``buildah from scratch`` + copy + config + commit; returns the image ID."""
    container = buildah.out("from", "--name", f"ctr-{label}", "scratch")
    buildah.run("copy", container, str(payload), "/bin/busybox")
    buildah.run(
        "config",
        "--arch",
        arch,
        "--os",
        "linux",
        "--cmd",
        '["/bin/busybox", "sh"]',
        "--label",
        f"dockyard.test={label}",
        container,
    )
    image_id = buildah.out("commit", "-q", "--rm", container, name)
    assert len(image_id) == 64, image_id
    return image_id


def _check_pushed(client: httpx.Client, repo: str, tag: str, pushed: str, media_type: str) -> dict[str, Any]:
    """The tag resolves to the pushed digest; the manifest's config and layers are all served. Returns the
    config."""
    response = get_manifest(client, repo, tag)
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == pushed == sha256(response.content)
    assert response.headers["content-type"] == media_type
    manifest = json.loads(response.content)
    assert manifest["mediaType"] == media_type
    for layer in manifest["layers"]:
        assert_blob(client, repo, layer["digest"], layer["size"])
    config = json.loads(assert_blob(client, repo, manifest["config"]["digest"], manifest["config"]["size"]))
    assert isinstance(config, dict)
    return config


@pytest.mark.parametrize(("fmt", "media_type"), [("oci", OCI_MANIFEST), ("v2s2", DOCKER_MANIFEST)], ids=["oci", "v2s2"])
def test_scratch_build_push_and_pull_back(
    buildah: Tool,
    server: DockyardServer,
    client: httpx.Client,
    repo: str,
    seed: str,
    busybox: Path,
    tmp_path: Path,
    fmt: str,
    media_type: str,
) -> None:
    image_id = _scratch_image(buildah, f"localhost/{seed}:built", "amd64", seed, busybox)
    digest_file = tmp_path / "digest"
    buildah.run(
        "push",
        NO_TLS,
        "--format",
        fmt,
        "--digestfile",
        str(digest_file),
        image_id,
        f"docker://{server.host}/{repo}:{fmt}",
    )
    pushed = digest_file.read_text().strip()

    config = _check_pushed(client, repo, fmt, pushed, media_type)
    assert config["architecture"] == "amd64"
    assert config["config"]["Labels"]["dockyard.test"] == seed
    manifest = json.loads(get_manifest(client, repo, fmt).content)
    assert manifest["config"]["digest"] == f"sha256:{image_id}"

    # The one layer, fetched from the registry, is a gzipped tar holding busybox byte for byte.
    (layer,) = manifest["layers"]
    tar_bytes = gzip.decompress(assert_blob(client, repo, layer["digest"]))
    assert config["rootfs"]["diff_ids"] == [f"sha256:{sha256_hex(tar_bytes)}"]
    with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
        member = tar.extractfile("bin/busybox")
        assert member is not None
        assert member.read() == busybox.read_bytes()

    buildah.run("rmi", "-f", image_id)
    assert buildah.run("inspect", "--type", "image", image_id, check=False).returncode != 0
    pulled = buildah.out("pull", "-q", NO_TLS, f"docker://{server.host}/{repo}:{fmt}")
    assert pulled == image_id
    # The root filesystem buildah unpacks from the pulled image has busybox in it, unchanged.
    container = buildah.out("from", "--name", "ctr-check", pulled)
    mount = Path(buildah.out("mount", container))
    assert (mount / "bin" / "busybox").read_bytes() == busybox.read_bytes()


def test_build_on_oci_layout_base_and_push_v2s2(
    buildah: Tool, server: DockyardServer, client: httpx.Client, image_layout: Layout, repo: str, tmp_path: Path
) -> None:
    (base,) = image_layout.images
    container = buildah.out("from", "--name", "ctr-layered", image_layout.ref)
    extra = tmp_path / "hello.txt"
    extra.write_text("hello from buildah\n")
    buildah.run("copy", container, str(extra), "/etc/hello.txt")
    buildah.run("config", "--label", "dockyard.layer=extra", container)
    image_id = buildah.out("commit", "-q", "--rm", container, "localhost/layered:1")
    digest_file = tmp_path / "digest"
    buildah.run(
        "push", NO_TLS, "--format", "v2s2", "--digestfile", str(digest_file), image_id,
        f"docker://{server.host}/{repo}:layered",
    )  # fmt: skip
    config = _check_pushed(client, repo, "layered", digest_file.read_text().strip(), DOCKER_MANIFEST)
    diff_ids = config["rootfs"]["diff_ids"]
    # The base image's layers come first, unchanged (diff_ids are digests of the uncompressed tars).
    assert diff_ids[: len(base.diff_ids)] == base.diff_ids
    assert len(diff_ids) == len(base.diff_ids) + 1
    assert config["config"]["Labels"]["dockyard.layer"] == "extra"


def test_manifest_list_push_all(
    buildah: Tool, server: DockyardServer, client: httpx.Client, repo: str, seed: str, busybox: Path, tmp_path: Path
) -> None:
    stand_in = tmp_path / "arm64-busybox"
    stand_in.write_bytes(b"#!not-an-arm64-binary\n" * 32)
    ids = {
        "amd64": _scratch_image(buildah, f"localhost/{seed}:amd64", "amd64", f"{seed}-amd64", busybox),
        "arm64": _scratch_image(buildah, f"localhost/{seed}:arm64", "arm64", f"{seed}-arm64", stand_in),
    }
    buildah.run("manifest", "create", f"localhost/{seed}:list")
    for arch, image_id in ids.items():
        buildah.run("manifest", "add", "--arch", arch, "--os", "linux", f"localhost/{seed}:list", image_id)
    digest_file = tmp_path / "digest"
    buildah.run(
        "manifest", "push", "--all", NO_TLS, "--digestfile", str(digest_file), f"localhost/{seed}:list",
        f"docker://{server.host}/{repo}:multi",
    )  # fmt: skip
    pushed = digest_file.read_text().strip()

    response = get_manifest(client, repo, "multi")
    assert response.status_code == 200, response.text
    assert response.headers["docker-content-digest"] == pushed == sha256(response.content)
    index = json.loads(response.content)
    assert response.headers["content-type"] == index["mediaType"]
    assert {m["platform"]["architecture"] for m in index["manifests"]} == {"amd64", "arm64"}
    for entry in index["manifests"]:
        child = get_manifest(client, repo, entry["digest"])
        assert child.status_code == 200, child.text
        assert len(child.content) == entry["size"]
        config_desc = json.loads(child.content)["config"]
        assert config_desc["digest"] == f"sha256:{ids[entry['platform']['architecture']]}"
        config = json.loads(assert_blob(client, repo, config_desc["digest"]))
        assert config["architecture"] == entry["platform"]["architecture"]
