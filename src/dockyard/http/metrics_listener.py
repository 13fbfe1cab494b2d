"""``/metrics`` on a listener of its own (``metrics_address``), so that scrapers reach it on an address clients do
not. A small threaded HTTP server from the standard library, run by the process that supervises the workers:
with several workers it renders every worker's counters from the shared multiprocess directory."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from dockyard.http.middleware import SECURITY_HEADERS
from dockyard.http.ops import METRICS_CHALLENGE, bearer_matches
from dockyard.settings import split_address

log = logging.getLogger("dockyard.ops")


class MetricsListener:
    """Serves ``GET /metrics`` on ``address`` (``host:port``) from a daemon thread until ``close()``; requires
    ``Authorization: Bearer <token>`` when ``token`` is set. Raises OSError at start if the address is taken."""

    def __init__(self, address: str, registry: Callable[[], CollectorRegistry], token: str = "") -> None:
        host, port = split_address(address)
        handler = _handler(registry, token)
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics-listener", daemon=True)
        self._thread.start()
        log.info("serving /metrics on %s", address)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(registry: Callable[[], CollectorRegistry], token: str) -> type[BaseHTTPRequestHandler]:
    class MetricsHandler(BaseHTTPRequestHandler):
        server_version = "dockyard"
        sys_version = ""

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self._reply(404, b"Not Found\n", "text/plain; charset=utf-8")
            elif token and not bearer_matches(self.headers.get("Authorization", ""), token):
                self._reply(401, b"Unauthorized\n", "text/plain; charset=utf-8", METRICS_CHALLENGE)
            else:
                self._reply(200, generate_latest(registry()), CONTENT_TYPE_LATEST)

        def _reply(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for raw_name, raw_value in SECURITY_HEADERS:
                self.send_header(raw_name.decode(), raw_value.decode())
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("metrics listener: " + format, *args)

    return MetricsHandler
