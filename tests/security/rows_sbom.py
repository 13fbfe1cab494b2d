"""Matrix rows for SBOM documents (``http/api/routes/sbom.py``): authorized exactly as a pull — whoever may pull
the private repository gets the document (after its inventory, computed in the background, is ready: a 202 is
waited out), whoever may not gets the 404 a missing repository gets (401 for dead credentials)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.security.rows_api import repo_level
from tests.security.rows_files import TAG, _repo_path, files_image
from tests.security.rows_oci import Call, Expect
from tests.security.world import World

ROWS: dict[tuple[str, str], tuple[Call, Expect]] = {}


def _get(path: Callable[[World], str]) -> Call:
    def call(world: World, principal: str, verb: str) -> httpx.Response:
        deadline = time.monotonic() + 60
        while True:
            response = world.api(principal, "GET", path(world), params={"format": "cyclonedx"})
            if response.status_code != 202 or time.monotonic() > deadline:
                return response
            time.sleep(0.2)

    return call


ROWS[("GET", "/api/v2/repositories/{ns}/{repo}/tags/{tag}/sbom")] = (
    _get(lambda w: f"{_repo_path(w)}/tags/{TAG}/sbom"),
    repo_level(1, 200),
)
ROWS[("GET", "/api/v2/repositories/{ns}/{repo}/manifests/{digest}/sbom")] = (
    _get(lambda w: f"{_repo_path(w)}/manifests/{files_image(w)}/sbom"),
    repo_level(1, 200),
)
