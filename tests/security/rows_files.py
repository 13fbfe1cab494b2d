"""Matrix rows for looking inside images (``http/api/routes/files.py``): authorized exactly as a pull — whoever
may pull the private repository gets the listing, the file or the diff; whoever may not gets the 404 a missing
repository gets (401 for dead credentials)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.security.rows_api import repo_level
from tests.security.rows_oci import Call, Expect
from tests.security.world import World
from tests.support.layers import E, layer
from tests.support.oci import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, canonical, descriptor, push_blob, sha256

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}
TAG = "files"
_pushed: dict[int, str] = {}


def push_files_image(world: World, repository: str) -> str:
    """Push an image whose one layer holds ``/etc/hello`` to ``repository``, tagged ``files``; returns its manifest
    digest."""
    config = canonical({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"]}})
    blob = layer([E("etc/hello", data=b"hello\n")])
    with world.admin_v2() as client:
        push_blob(client, repository, config)
        push_blob(client, repository, blob)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": descriptor(OCI_CONFIG, config),
                "layers": [descriptor(OCI_LAYER, blob)],
            }
        )
        response = client.put(f"/v2/{repository}/manifests/{TAG}", content=body, headers={"Content-Type": OCI_MANIFEST})
        assert response.status_code == 201, response.text
    return sha256(body)


def files_image(world: World) -> str:
    """Push (once per world) the ``/etc/hello`` image to the private repository, tagged ``files``; returns its
    manifest digest."""
    if id(world) not in _pushed:
        _pushed[id(world)] = push_files_image(world, world.repo)
    return _pushed[id(world)]


def _repo_path(world: World) -> str:
    files_image(world)
    ns, name = world.repo.split("/", 1)
    return f"/api/v2/repositories/{ns}/{name}"


def _get(path: Callable[[World], str], params: dict[str, Any]) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        return world.api(principal, "GET", path(world), params=params)

    return call


def row(template: str, path: Callable[[World], str], params: dict[str, Any]) -> None:
    ROWS[("GET", template)] = (_get(path, params), repo_level(1, 200))


row(
    "/api/v2/repositories/{ns}/{repo}/tags/{tag}/files",
    lambda w: f"{_repo_path(w)}/tags/{TAG}/files",
    {"path": "/etc"},
)
row(
    "/api/v2/repositories/{ns}/{repo}/tags/{tag}/files/content",
    lambda w: f"{_repo_path(w)}/tags/{TAG}/files/content",
    {"path": "/etc/hello"},
)
row(
    "/api/v2/repositories/{ns}/{repo}/manifests/{digest}/files",
    lambda w: f"{_repo_path(w)}/manifests/{files_image(w)}/files",
    {"path": "/etc/hello"},
)
row(
    "/api/v2/repositories/{ns}/{repo}/manifests/{digest}/files/content",
    lambda w: f"{_repo_path(w)}/manifests/{files_image(w)}/files/content",
    {"path": "/etc/hello"},
)
ROWS[("GET", "/api/v2/repositories/{ns}/{repo}/diff")] = (
    lambda w, p, verb: w.api(p, "GET", f"{_repo_path(w)}/diff", params={"from": files_image(w), "to": TAG}),
    repo_level(1, 200),
)
