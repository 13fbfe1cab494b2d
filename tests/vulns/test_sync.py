"""The scheduled vulnerability-data sync (``vulndb.sync``) from configured sources: a local HTTP server plays an OSV
mirror serving an ecosystem's ``all.zip``. The server imports it at start and again every interval: a newer export
re-matches the image holding the changed package and records ``vulnerability.found``; a failing source keeps the
previous data serving and records its error. In air-gapped mode the same configuration fetches nothing."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app_server import AppServer
from tests.support.checks import wait_for
from tests.support.oci import push_image, sha256
from tests.support.vuln_inventory import write_inventory
from tests.vulns.osv_fixture import database_v1, database_v2, write_zip
from tests.vulns.test_scanning import deb, ids, lang, report, vulndb

FIXTURE_INVENTORY = "tests.support.vuln_inventory:FixtureInventory"


class OsvMirror:
    """Serves ``/Debian/all.zip`` (whatever ``body`` holds, or ``status``) on loopback and counts the requests."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.hits = 0
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                mirror.hits += 1
                if self.path != "/Debian/all.zip" or mirror.status != 200:
                    self.send_error(404 if mirror.status == 200 else mirror.status)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(mirror.body)))
                self.end_headers()
                self.wfile.write(mirror.body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/Debian/all.zip"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def mirror() -> Iterator[OsvMirror]:
    served = OsvMirror()
    yield served
    served.close()


def _server(tmp_path: Path, mirror: OsvMirror, **env: str) -> AppServer:
    return AppServer(
        tmp_path / "data",
        secure=True,
        env={
            "DOCKYARD_VULNS_INVENTORY_SOURCE": FIXTURE_INVENTORY,
            "DOCKYARD_VULNDB_SOURCES": mirror.url,
            "DOCKYARD_VULNDB_SYNC_INTERVAL_SECONDS": "1",
            **env,
        },
    )


def _advisories(server: AppServer) -> int:
    return int(server.query_sql("SELECT COUNT(*) FROM vuln_advisories")[0][0])


def test_sources_are_synced_at_start_and_on_schedule(tmp_path: Path, mirror: OsvMirror) -> None:
    mirror.body = write_zip(tmp_path / "v1.zip", database_v1()).read_bytes()
    server = _server(tmp_path, mirror)
    server.start()
    try:
        wait_for(lambda: _advisories(server) == 7, timeout=60, what="the first sync")
        with httpx.Client(base_url=server.url, timeout=30, auth=("admin", server.ADMIN_PASSWORD)) as admin:
            image = push_image(admin, "admin/app", "v1")
            layer = sha256(image.layers[0])
            libssl = deb("libssl3", "3.0.11-1~deb12u1", layer, source="openssl")
            packages = [libssl, lang("npm", "lodash", "4.17.20", layer)]
            write_inventory(server.data_dir, {image.digest: packages})
            assert set(ids(report(admin, "admin/app", "v1"))) == {"DSA-0001-1"}
            (last_event,) = server.query_sql("SELECT COALESCE(MAX(id), 0) FROM events")[0]
            hits = mirror.hits
            assert hits >= 1

            # a newer export: picked up on schedule, the image holding lodash re-matched, a critical finding found
            mirror.body = write_zip(tmp_path / "v2.zip", database_v2()).read_bytes()
            wait_for(
                lambda: "GHSA-dddd-eeee-ffff" in ids(report(admin, "admin/app", "v1")), timeout=60, what="the resync"
            )
            assert ids(report(admin, "admin/app", "v1"))["GHSA-dddd-eeee-ffff"][3] == "critical"
            found = server.query_sql(
                "SELECT digest FROM events WHERE type = 'vulnerability.found' AND id > :n", n=last_event
            )
            assert [row[0] for row in found] == [image.digest]

            # a failing source: its error is recorded, the previous data keeps serving
            count = _advisories(server)
            mirror.status = 503
            wait_for(
                lambda: server.query_sql("SELECT error FROM vuln_sources WHERE source = :s", s=mirror.url)[0][0],
                timeout=60,
                what="the failed sync's error",
            )
            assert _advisories(server) == count
            assert "GHSA-dddd-eeee-ffff" in ids(report(admin, "admin/app", "v1"))
            assert mirror.hits > hits + 1
        status = vulndb(server, "status")
        assert status["sync"] == "every 1 s from 1 sources"
        sources = status["sources"]
        assert isinstance(sources, list)
        assert [s["source"] for s in sources] == [mirror.url]
    finally:
        server.stop()


def test_air_gapped_mode_fetches_nothing(tmp_path: Path, mirror: OsvMirror) -> None:
    mirror.body = write_zip(tmp_path / "v1.zip", database_v1()).read_bytes()
    server = _server(tmp_path, mirror, DOCKYARD_VULNDB_AIR_GAPPED="true")
    server.start()
    try:
        time.sleep(4)  # four sync intervals
        assert mirror.hits == 0
        assert _advisories(server) == 0
        status = vulndb(server, "status")
        assert status["sync"] == "off: air-gapped (1 sources configured)"
        imported = vulndb(server, "import", str(tmp_path / "v1.zip"))  # data carried in still loads
        assert imported["changed"] == 7
        assert mirror.hits == 0
    finally:
        server.stop()
