"""The SBOM of a real image made of three layers, pushed with skopeo: a hand-made Alpine base (``os-release`` and
an apk ``installed`` database), a Node layer made with ``npm install`` of a small package and its dependency from
the npm registry, and a Go binary built here with Debian's ``go`` (``golang-go``) from a module with one vendored
dependency. The SBOM lists exactly those packages: the apk records, what ``npm ls --all`` lists, and the modules
``go version -m`` prints with the standard library at the toolchain's version."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.api.test_sbom import sbom
from tests.clients.conftest import Tool, docker_ref
from tests.clients.test_sbom_debian import _layout
from tests.support.server import DockyardServer
from tests.support.tools import require_tool

pytestmark = [pytest.mark.clients, pytest.mark.slow]

ALPINE_OS_RELEASE = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME="Alpine Linux v3.19"\n'
APK_INSTALLED = (
    b"C:Q1abc=\nP:musl\nV:1.2.4_git20230717-r4\nA:x86_64\nS:383152\nI:622592\nT:the musl c library\no:musl\n\n"
    b"C:Q1def=\nP:busybox\nV:1.36.1-r15\nA:x86_64\no:busybox\n\n"
    b"C:Q1ghi=\nP:ssl_client\nV:1.36.1-r15\nA:x86_64\no:busybox\n\n"
    b"C:Q1jkl=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n"
)
NPM_PACKAGE = "is-odd@3.0.1"  # depends on is-number@^6
GO_DEPENDENCY = ("example.com/greet", "v1.2.3")


def _tar(files: dict[str, tuple[bytes, int]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _tree(root: Path, prefix: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root, arcname=prefix)
    return out.getvalue()


def _node_layer(tmp_path: Path) -> tuple[bytes, set[str]]:
    npm = require_tool("npm")
    app = tmp_path / "node-app"
    app.mkdir()
    env = {**os.environ, "npm_config_cache": str(tmp_path / "npm-cache"), "npm_config_update_notifier": "false"}
    installed = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--prefix", str(app), NPM_PACKAGE],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        check=False,
    )
    if installed.returncode != 0:
        pytest.skip(f"npm install needs the npm registry: {installed.stderr[-500:]}")
    listed = subprocess.run(
        [npm, "ls", "--all", "--json", "--prefix", str(app)], capture_output=True, text=True, env=env, check=True
    )
    expected: set[str] = set()

    def walk(dependencies: dict[str, dict[str, object]]) -> None:
        for name, info in dependencies.items():
            expected.add(f"pkg:npm/{name}@{info['version']}")
            walk(info.get("dependencies", {}))  # type: ignore[arg-type]

    walk(json.loads(listed.stdout)["dependencies"])
    return _tree(app / "node_modules", "srv/app/node_modules"), expected


def _go_layer(tmp_path: Path) -> tuple[bytes, set[str]]:
    go = require_tool("go")
    module = tmp_path / "hello"
    dependency, version = GO_DEPENDENCY
    (module / "vendor" / dependency).mkdir(parents=True)
    (module / "go.mod").write_text(f"module example.com/hello\n\ngo 1.19\n\nrequire {dependency} {version}\n")
    (module / "main.go").write_text(
        f'package main\n\nimport (\n\t"fmt"\n\n\t"{dependency}"\n)\n\nfunc main() {{ fmt.Println(greet.Hello()) }}\n'
    )
    (module / "vendor" / "modules.txt").write_text(f"# {dependency} {version}\n## explicit\n{dependency}\n")
    (module / "vendor" / dependency / "greet.go").write_text(
        'package greet\n\nfunc Hello() string { return "hello" }\n'
    )
    env = {
        **os.environ,
        "GOPATH": str(tmp_path / "gopath"),
        "GOCACHE": str(tmp_path / "gocache"),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=vendor -buildvcs=false",
        "CGO_ENABLED": "0",
    }
    binary = tmp_path / "hello-bin"
    subprocess.run([go, "build", "-o", str(binary), "."], cwd=module, env=env, check=True, timeout=300)
    info = subprocess.run([go, "version", "-m", str(binary)], env=env, capture_output=True, text=True, check=True)
    expected = set()
    for line in info.stdout.splitlines():
        fields = line.split()
        if fields[:1] == ["dep"]:
            expected.add(f"pkg:golang/{fields[1]}@{fields[2]}")
    toolchain = info.stdout.split()[1]  # "<path>: go1.19.8"
    expected.add(f"pkg:golang/stdlib@v{toolchain.removeprefix('go')}")
    assert f"pkg:golang/{dependency}@{version}" in expected
    return _tar({"usr/local/bin/hello": (binary.read_bytes(), 0o755)}), expected


def test_sbom_of_alpine_node_and_go_layers_lists_exactly_their_packages(
    skopeo: Tool, server: DockyardServer, client: httpx.Client, repo: str, tmp_path: Path
) -> None:
    base = _tar({"etc/os-release": (ALPINE_OS_RELEASE, 0o644), "lib/apk/db/installed": (APK_INSTALLED, 0o644)})
    node, npm_expected = _node_layer(tmp_path)
    go, go_expected = _go_layer(tmp_path)
    assert npm_expected == {"pkg:npm/is-odd@3.0.1", "pkg:npm/is-number@6.0.0"}
    layout = tmp_path / "layout"
    digest = _layout(layout, [base, node, go])
    skopeo.run(
        "copy", "--preserve-digests", "--dest-tls-verify=false", f"oci:{layout}:latest", docker_ref(server, repo, "v1")
    )

    response = sbom(client, repo, "v1", "cyclonedx", timeout=240)
    assert response.status_code == 200, response.text
    bom = response.json()
    assert bom["metadata"]["component"]["version"] == digest
    purls = {c["purl"].split("?")[0] for c in bom["components"] if "purl" in c}
    apk = {
        "pkg:apk/alpine/musl@1.2.4_git20230717-r4",
        "pkg:apk/alpine/busybox@1.36.1-r15",
        "pkg:apk/alpine/ssl_client@1.36.1-r15",
        "pkg:apk/alpine/libcrypto3@3.1.4-r5",
    }
    assert purls == apk | npm_expected | go_expected
    layers = {
        c["purl"].split("?")[0]: {p["name"]: p["value"] for p in c["properties"]}["dockyard:layer"]
        for c in bom["components"]
        if "purl" in c
    }
    assert layers["pkg:npm/is-odd@3.0.1"] == f"sha256:{hashlib.sha256(node).hexdigest()}"
    assert layers[f"pkg:golang/{GO_DEPENDENCY[0]}@{GO_DEPENDENCY[1]}"] == f"sha256:{hashlib.sha256(go).hexdigest()}"
    os_component = next(c for c in bom["components"] if c["type"] == "operating-system")
    assert (os_component["name"], os_component["version"]) == ("alpine", "3.19.1")
