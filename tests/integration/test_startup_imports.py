"""What a server process loads to start and answer ``/v2/`` (issue 17, item 4): the libraries only some requests
or jobs need load on first use, so none of them may be imported by the start itself — a server worker's start
(``dockyard.cli.server_worker``: prepare an initialised database, build the app, run its lifespan with the job
runner and the event bus) followed by an anonymous ``GET /v2/``, in a fresh interpreter."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Each loads on first use: tokens and sealed secrets, signature checks, SBOM documents, vulnerability matching,
# the inventory's detectors, 2FA, regular-expression rules, the Hub API and web hub, migrations, PostgreSQL, LDAP
# (only when configured).
LAZY = (
    "alembic",
    "cryptography",
    "cvss",
    "cyclonedx",
    "debian",
    "fastapi",
    "jinja2",
    "jwt",
    "ldap3",
    "nacl",
    "packageurl",
    "pyotp",
    "re2",
    "rich",
    "segno",
    "spdx_tools",
    "sqlalchemy.dialects.postgresql",
    "univers",
    "watchfiles",
)  # (not zstandard: httpx, which the proxy's upstream client needs, decodes zstd responses with it)

WORKER = """
import asyncio, sys
from dockyard.cli.lean_imports import skip_unused_imports
skip_unused_imports()
from dockyard.settings import load_settings
from dockyard.startup import prepare_data_dir, prepare_database, resolve_secret_key

settings = load_settings()
prepare_data_dir(settings)
settings = resolve_secret_key(settings)
prepare_database(settings)
if sys.argv[1] == "prepare":
    raise SystemExit(0)
from dockyard.app import create_app

app = create_app(settings)
scope = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/v2/", "raw_path": b"/v2/", "root_path": "", "query_string": b"", "headers": [(b"host", b"localhost")],
    "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 5000),
}
statuses = []

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    if message["type"] == "http.response.start":
        statuses.append(message["status"])

async def main():
    async with app.shell.router.lifespan_context(app.shell):
        await app(scope, receive, send)
        await asyncio.sleep(1.0)  # the job runner's first claims and periodic jobs, the event bus's first poll
    print(statuses[0])
    print(",".join(name for name in sys.argv[2].split(",") if name in sys.modules))

asyncio.run(main())
"""


def test_a_server_start_and_a_v2_request_load_none_of_the_lazy_libraries(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKYARD_DATA_DIR": str(tmp_path / "data"), "DOCKYARD_OPEN": "true"}
    env.pop("DOCKYARD_DATABASE_URL", None)
    env.pop("DOCKYARD_STORAGE_URL", None)
    run = [sys.executable, "-c", WORKER]
    subprocess.run([*run, "prepare", ""], env=env, check=True, timeout=120)  # migrations (Alembic) on a fresh DB
    out = subprocess.run(
        [*run, "serve", ",".join(LAZY)], env=env, check=True, timeout=120, capture_output=True, text=True
    ).stdout.splitlines()
    assert out[0] == "200"
    assert out[1] == "", f"loaded at start: {out[1]}"
