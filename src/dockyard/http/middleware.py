"""Pure ASGI middleware: request ids, Prometheus metrics and the structured (JSON) access log; security headers."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.registry.gc import GCReport
from dockyard.vulns.matching import Finding

access_log = logging.getLogger("dockyard.access")


class Metrics:
    """The app's Prometheus collectors, on a registry of its own (never the process-global one)."""

    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self.requests = Counter(
            "dockyard_http_requests_total",
            "HTTP requests",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dockyard_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.bytes_in = Counter(
            "dockyard_http_received_bytes_total", "Request body bytes", ["route"], registry=self.registry
        )
        self.bytes_out = Counter(
            "dockyard_http_sent_bytes_total", "Response body bytes", ["route"], registry=self.registry
        )
        self.uploads_in_progress = Gauge(
            "dockyard_uploads_in_progress",
            "Blob upload requests being received",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

        self.gc_runs = Counter("dockyard_gc_runs_total", "Garbage collections", registry=self.registry)
        self.gc_deleted = Counter(
            "dockyard_gc_deleted_total", "Objects deleted by garbage collection", ["kind"], registry=self.registry
        )
        self.gc_freed_bytes = Counter(
            "dockyard_gc_freed_bytes_total", "Blob bytes freed by garbage collection", registry=self.registry
        )

        self.password_verifications = Counter(
            "dockyard_password_verifications_total",
            "Password verifications (argon2) run for logins, unknown accounts' dummy ones included",
            registry=self.registry,
        )
        self.logins_throttled = Counter(
            "dockyard_logins_throttled_total",
            "Password logins refused with 429 before verifying: backoff (failures) or busy (no free slot)",
            ["reason"],
            registry=self.registry,
        )

        self.vuln_scan_seconds = Histogram(
            "dockyard_vulnerability_scan_duration_seconds",
            "Vulnerability scans of image manifests (matching and storing the findings)",
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.vuln_findings = Counter(
            "dockyard_vulnerability_findings_total",
            "Findings of the vulnerability scans run by this server, by severity",
            ["severity"],
            registry=self.registry,
        )
        self.vulndb_import_seconds = Histogram(
            "dockyard_vulndb_import_duration_seconds",
            "Imports of vulnerability data (scheduled syncs)",
            registry=self.registry,
            buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800),
        )

    # The authenticator's observer (dockyard.auth.credentials.AuthObserver).
    def password_verified(self) -> None:
        self.password_verifications.inc()

    def login_throttled(self, reason: str) -> None:
        self.logins_throttled.labels(reason).inc()

    # The vulnerability scanner's observer (dockyard.vulns.scanner.ScanObserver).
    def scan_finished(self, seconds: float, findings: Sequence[Finding]) -> None:
        self.vuln_scan_seconds.observe(seconds)
        for finding in findings:
            self.vuln_findings.labels(finding.severity).inc()

    def import_finished(self, seconds: float) -> None:
        self.vulndb_import_seconds.observe(seconds)

    def record_gc(self, report: GCReport) -> None:
        self.gc_runs.inc()
        self.gc_deleted.labels("manifest").inc(len(report.manifests))
        self.gc_deleted.labels("blob_link").inc(report.blob_links)
        self.gc_deleted.labels("blob").inc(len(report.blobs))
        self.gc_deleted.labels("upload").inc(len(report.uploads))
        self.gc_freed_bytes.inc(report.bytes_freed)

    def exposition_registry(self) -> CollectorRegistry:
        """What /metrics renders: this process's collectors, or all workers' when several share a directory."""
        if self.multiprocess_dir is None:
            return self.registry
        return multiprocess_registry(self.multiprocess_dir)


def multiprocess_registry(directory: str) -> CollectorRegistry:
    """Every worker's collectors, summed from the files they share in ``directory``."""
    combined = CollectorRegistry()
    MultiProcessCollector(combined, path=directory)  # type: ignore[no-untyped-call]  # untyped upstream
    return combined


def route_label(path: str) -> str:
    """A low-cardinality label for a request path."""
    if not path.startswith("/v2"):
        return path if path in ("/healthz", "/readyz", "/metrics") else "other"
    if path in ("/v2", "/v2/"):
        return "base"
    if path == "/v2/_catalog":
        return "catalog"
    if path.endswith("/tags/list"):
        return "tags"
    if "/blobs/uploads" in path:
        return "uploads"
    if "/blobs/" in path:
        return "blobs"
    if "/manifests/" in path:
        return "manifests"
    if "/referrers/" in path:
        return "referrers"
    return "other"


class ObservabilityMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics, *, log_requests: bool = True) -> None:
        self.app = app
        self.metrics = metrics
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        route = route_label(scope["path"])
        method = scope["method"]
        status = 500
        received = 0
        sent = 0
        upload = route == "uploads" and method in ("PATCH", "PUT", "POST")

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        if upload:
            self.metrics.uploads_in_progress.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if upload:
                self.metrics.uploads_in_progress.dec()
            elapsed = time.perf_counter() - start
            m = self.metrics
            m.requests.labels(route, method, str(status)).inc()
            m.latency.labels(route, method).observe(elapsed)
            if received:
                m.bytes_in.labels(route).inc(received)
            if sent:
                m.bytes_out.labels(route).inc(sent)
            if self.log_requests:
                client = scope.get("client")
                access_log.info(
                    json.dumps(
                        {
                            "request_id": request_id,
                            "method": method,
                            "path": scope["path"][:512],
                            "route": route,
                            "status": status,
                            "bytes_in": received,
                            "bytes_out": sent,
                            "duration_ms": round(elapsed * 1000, 2),
                            "remote": client[0] if client else None,
                        },
                        separators=(",", ":"),
                    )
                )


# Dockyard serves JSON, manifests and blobs, never a page: nothing it sends may be sniffed into HTML, load
# anything or be framed.
CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
)
_SECURITY_HEADER_NAMES = frozenset(name for name, _ in SECURITY_HEADERS)


class SecurityHeadersMiddleware:
    """Adds ``X-Content-Type-Options: nosniff`` and a deny-all ``Content-Security-Policy`` to every HTTP
    response (a response that sets its own keeps it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def secured_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers} & _SECURITY_HEADER_NAMES
                headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, secured_send)


def _request_id(scope: Scope) -> str:
    for key, value in scope["headers"]:
        if key == b"x-request-id" and 0 < len(value) <= 64 and value.isascii():
            return str(value.decode())
    return uuid.uuid4().hex[:16]
