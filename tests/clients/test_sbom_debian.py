"""The SBOM of a real Debian image: a bookworm rootfs made with mmdebstrap (``--variant=essential``, once per
session) as the base layer, a Python layer holding one distribution as pip installs it (the files of
packageurl-python, a dependency of Dockyard's, copied from this environment: nothing is downloaded) on top,
pushed with skopeo. The SBOM lists exactly the packages ``dpkg-query -W`` lists for that rootfs, plus the
Python distribution."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.api.test_sbom import sbom
from tests.clients.conftest import Tool, docker_ref
from tests.support.cli import dockyard_cli
from tests.support.images import AMD64, LayoutWriter
from tests.support.oci import OCI_CONFIG, OCI_MANIFEST
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

pytestmark = [pytest.mark.clients, pytest.mark.slow]
PLAIN_LAYER = "application/vnd.oci.image.layer.v1.tar"
DISTRIBUTION = importlib.metadata.distribution("packageurl-python")  # in the lock file, so installed here


@pytest.fixture(scope="session")
def debian_rootfs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the rootfs tar, a directory holding its dpkg database)."""
    mmdebstrap = require_tool("mmdebstrap")
    root = tmp_path_factory.mktemp("debian")
    rootfs = root / "rootfs.tar"
    subprocess.run(
        [mmdebstrap, "--quiet", "--variant=essential", "--format=tar", "bookworm", str(rootfs)],
        check=True,
        capture_output=True,
        timeout=900,
    )
    admindir = root / "dpkg"
    admindir.mkdir()
    with tarfile.open(rootfs) as tar:
        for member in tar:
            if member.isfile() and member.name.lstrip("./") == "var/lib/dpkg/status":
                source = tar.extractfile(member)
                assert source is not None
                (admindir / "status").write_bytes(source.read())
    (admindir / "updates").mkdir()
    return rootfs, admindir


def _python_layer(tmp_path: Path) -> bytes:
    """A layer with ``DISTRIBUTION`` in ``/usr/local/lib/python3.11/site-packages``, as ``pip install`` left it: its
    modules and its ``.dist-info`` (with ``RECORD``), copied from this environment's site-packages."""
    target = tmp_path / "site"
    for file in DISTRIBUTION.files or ():
        source = Path(str(DISTRIBUTION.locate_file(file)))
        if ".." in file.parts or "__pycache__" in file.parts or not source.is_file():
            continue  # scripts outside site-packages, bytecode
        (target / file).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target / file)
    assert any(target.glob("*.dist-info/METADATA")), "the distribution's metadata was not found"
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        tar.add(target, arcname="usr/local/lib/python3.11/site-packages")
    return out.getvalue()


def _layout(path: Path, layers: list[bytes]) -> str:
    writer = LayoutWriter(path)
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {}, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": writer.descriptor(OCI_CONFIG, config),
            "layers": [writer.descriptor(PLAIN_LAYER, layer) for layer in layers],
        }
    ).encode()
    writer.tag("latest", OCI_MANIFEST, manifest, platform=AMD64.as_dict())
    writer.finish()
    return f"sha256:{hashlib.sha256(manifest).hexdigest()}"


def test_sbom_of_a_debian_image_lists_what_dpkg_lists(
    skopeo: Tool,
    server: DockyardServer,
    client: httpx.Client,
    repo: str,
    tmp_path: Path,
    debian_rootfs: tuple[Path, Path],
) -> None:
    rootfs, admindir = debian_rootfs
    expected = set()
    listing = subprocess.run(
        [
            "dpkg-query",
            "-W",
            f"--admindir={admindir}",
            "-f",
            "${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n",
        ],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    for line in listing.splitlines():
        status, name, version, arch = line.split("\t")
        if status.startswith("ii"):
            expected.add((name, version, arch))
    assert len(expected) > 20
    layout = tmp_path / "layout"
    digest = _layout(layout, [rootfs.read_bytes(), _python_layer(tmp_path)])
    skopeo.run(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        f"oci:{layout}:latest",
        docker_ref(server, repo, "latest"),
    )

    response = sbom(client, repo, "latest", "cyclonedx", timeout=240)
    assert response.status_code == 200, response.text
    bom = response.json()
    assert bom["metadata"]["component"]["version"] == digest
    debs = set()
    pypi = set()
    for component in bom["components"]:
        purl = component.get("purl", "")
        if purl.startswith("pkg:deb/debian/"):
            assert purl.endswith("distro=debian-12") or "distro=debian-12" in purl
            arch = purl.split("arch=")[1].split("&")[0]
            debs.add((component["name"], component["version"], arch))
        elif purl.startswith("pkg:pypi/"):
            pypi.add(purl)
    assert debs == expected
    assert pypi == {f"pkg:pypi/packageurl-python@{DISTRIBUTION.version}"}
    os_component = next(c for c in bom["components"] if c["type"] == "operating-system")
    assert (os_component["name"], os_component["version"]) == ("debian", "12")

    # The same inventory feeds vulnerability matching: an advisory for the Debian 12 source package of an installed
    # package, fixed after the installed version, is found (with the layer that brought it); one fixed before is not.
    source_line = subprocess.run(
        ["dpkg-query", "-W", f"--admindir={admindir}", "-f", "${source:Package}\t${source:Version}\n", "base-files"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout.strip()
    source, source_version = source_line.split("\t")
    advisories = tmp_path / "osv"
    advisories.mkdir()
    for ident, fixed in (("DSA-9999-1", f"{source_version}+zz1"), ("DSA-9998-1", "0.1")):
        (advisories / f"{ident}.json").write_text(
            json.dumps(
                {
                    "schema_version": "1.6.0",
                    "id": ident,
                    "modified": "2026-01-01T00:00:00Z",
                    "affected": [
                        {
                            "package": {"ecosystem": "Debian:12", "name": source},
                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}],
                        }
                    ],
                }
            )
        )
    imported = dockyard_cli(
        "vulndb", "import", str(advisories), "--data-dir", str(server.data_dir), env={**os.environ, **server.env}
    )
    assert imported.returncode == 0, imported.stderr
    ns, name = repo.split("/", 1)
    response = client.get(f"/api/v2/repositories/{ns}/{name}/tags/latest/vulnerabilities")
    assert response.status_code == 200, response.text
    findings = {f["id"]: f for f in response.json()["findings"]}
    assert set(findings) == {"DSA-9999-1"}
    assert findings["DSA-9999-1"]["fixed_version"] == f"{source_version}+zz1"
