"""The Prometheus metrics of a Dockyard process: every collector, on a registry of its own (never the process-global
one), and the observers that feed them (the authenticator's, the job runner's, the database's, the blob store's,
the scanner's). The HTTP ones are fed by ``dockyard.http.middleware``; ``deploy/grafana-dashboard.json`` charts
them and ``docs/deploy.md`` lists them."""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.multiprocess import MultiProcessCollector

from dockyard import __version__
from dockyard.registry.gc import GCReport
from dockyard.vulns.matching import Finding

WEBHOOK_DELIVERY_JOB = "webhooks.deliver"
JOB_STATES = ("queued", "running")


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

        self.build_info = Gauge(
            "dockyard_build_info",
            "Always 1: the Dockyard and Python versions this process runs",
            ["version", "python"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.build_info.labels(__version__, platform.python_version()).set(1)
        self.auth_failures = Counter(
            "dockyard_auth_failures_total",
            "Refused credentials (wrong password, robot or CLI secret, unknown or revoked token, malformed), by kind",
            ["credential"],
            registry=self.registry,
        )
        self.job_runs = Counter(
            "dockyard_job_runs_total",
            "Background job attempts by kind and outcome (succeeded, retry, failed, dead, lost)",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = Histogram(
            "dockyard_job_duration_seconds",
            "Background job attempts, by kind",
            ["kind"],
            registry=self.registry,
            buckets=(0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600),
        )
        self.webhook_deliveries = Counter(
            "dockyard_webhook_delivery_attempts_total",
            "Webhook delivery attempts by outcome (succeeded, retry, failed, dead, lost)",
            ["outcome"],
            registry=self.registry,
        )
        self.job_queue_depth = Gauge(
            "dockyard_job_queue_depth",
            "Jobs waiting or running, by state (read from the database when /metrics is scraped)",
            ["state"],
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.job_queue_oldest = Gauge(
            "dockyard_job_queue_oldest_age_seconds",
            "Age of the oldest queued job that is due (0 when none; read when /metrics is scraped)",
            registry=self.registry,
            multiprocess_mode="mostrecent",
        )
        self.db_statement_seconds = Histogram(
            "dockyard_db_statement_duration_seconds",
            "Database statement execution (cursor execute to return; fetching not included)",
            registry=self.registry,
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 5),
        )
        self.storage_seconds = Histogram(
            "dockyard_storage_operation_duration_seconds",
            "Blob storage operations (streamed reads and upload writes excluded), by operation",
            ["operation"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
        )

    # The authenticator's observer (dockyard.auth.credentials.AuthObserver).
    def password_verified(self) -> None:
        self.password_verifications.inc()

    def login_throttled(self, reason: str) -> None:
        self.logins_throttled.labels(reason).inc()

    def login_failed(self, credential: str) -> None:
        self.auth_failures.labels(credential).inc()

    # The job runner's observer (dockyard.jobs.runner.OutcomeObserver).
    def job_finished(self, kind: str, outcome: str, seconds: float) -> None:
        self.job_runs.labels(kind, outcome).inc()
        self.job_seconds.labels(kind).observe(seconds)
        if kind == WEBHOOK_DELIVERY_JOB:
            self.webhook_deliveries.labels(outcome).inc()

    def job_queue(self, depth: Mapping[str, int], oldest_seconds: float) -> None:
        for state in JOB_STATES:
            self.job_queue_depth.labels(state).set(depth.get(state, 0))
        self.job_queue_oldest.set(oldest_seconds)

    # The database's and the blob store's observers.
    def statement_executed(self, seconds: float) -> None:
        self.db_statement_seconds.observe(seconds)

    def storage_operation(self, operation: str, seconds: float) -> None:
        self.storage_seconds.labels(operation).observe(seconds)

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
