"""Domain errors raised by services. They carry no HTTP: each surface (``http/oci``, ``http/api``) maps them.

Every error names its *subject* (what was wrong: a name, a digest, a manifest, …) so that a surface can pick a
precise code, e.g. ``NotFound("blob")`` → OCI ``BLOB_UNKNOWN`` 404.
"""

from __future__ import annotations

from typing import Any, Literal

Subject = Literal[
    "repository",
    "blob",
    "manifest",
    "manifest_blob",
    "upload",
    "tag",
    "name",
    "digest",
    "size",
    "range",
    "request",
    "operation",
    "account",
    "credentials",
    "token",
    "organization",
    "team",
    "member",
    "permission",
    "robot",
    "star",
    "scope",
    "webhook",
    "delivery",
    "key",
    "identity",
    "policy",
    "file",
    "layer",
    "vulndb",
    "vex",
    "allowlist",
    "quota",
    "retention",
    "upstream",
    "build_link",
    "build_rule",
    "build",
    "trigger",
    "replication",
    "invite",
]


class DomainError(Exception):
    """Base of all expected errors. ``message`` is safe to show a client; ``detail`` is JSON-able."""

    def __init__(self, subject: Subject, message: str, detail: Any = None) -> None:
        super().__init__(message)
        self.subject: Subject = subject
        self.message = message
        self.detail = detail


class NotFound(DomainError):
    """The named thing does not exist (or is not visible to the caller)."""


class Invalid(DomainError):
    """The input is malformed or inconsistent with the content it describes."""


class TooLarge(DomainError):
    """The input is larger than this server accepts."""


class RangeNotSatisfiable(DomainError):
    """A byte range does not fit the content (out-of-order chunk, range past the end)."""

    def __init__(self, subject: Subject, message: str, detail: Any = None, *, current_end: int = -1) -> None:
        super().__init__(subject, message, detail)
        self.current_end = current_end


class Conflict(DomainError):
    """A concurrent change won; the caller may retry."""


class Unsupported(DomainError):
    """The operation or format is not supported."""


class Denied(DomainError):
    """The caller is known but may not do this."""


class QuotaExceeded(Denied):
    """A change would take a namespace past a hard quota (``quota``: "storage" or "repositories"); ``used`` is
    what the namespace would use with the change, ``limit`` its limit. Refused as any denial (403)."""

    def __init__(self, namespace: str, quota: str, used: int, limit: int) -> None:
        noun = "storage" if quota == "storage" else "repository count"
        unit = " bytes" if quota == "storage" else ""
        super().__init__(
            "quota",
            f"quota exceeded: namespace {namespace!r} {noun} quota, used {used}{unit} of limit {limit}{unit}",
            {"namespace": namespace, "quota": quota, "used": used, "limit": limit},
        )
        self.namespace = namespace
        self.quota = quota
        self.used = used
        self.limit = limit


class Unauthorized(DomainError):
    """The caller must authenticate first."""


class RateLimited(DomainError):
    """Too many attempts (failed logins); ``retry_after`` seconds until the next one is considered."""

    def __init__(self, subject: Subject, message: str, detail: Any = None, *, retry_after: int = 60) -> None:
        super().__init__(subject, message, detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    """Something this request depends on (an upstream registry) cannot answer now; trying later may work."""
