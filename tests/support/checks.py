"""Small helpers every kind of test uses: unique names, problem+json assertions, and waiting on a condition.

``wait_for`` is how a test waits: on the condition it needs ("the delivery is recorded", "the upload is gone"),
never on a fixed sleep. To show that something did NOT happen, wait for a later thing that is ordered after it
(a marker event, the queue drained) and then assert its absence.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import httpx

T = TypeVar("T")


def unique(prefix: str = "u") -> str:
    """A fresh name, valid as a user, organization, team or repository name when ``prefix`` is (lowercase
    letters and digits; ten characters are added, so a prefix of up to 20 stays within the 30 allowed)."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert that ``response`` is an RFC 9457 problem (``application/problem+json``) of ``status``; returns its
    body."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


def wait_for(
    probe: Callable[[], T | Literal[False] | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something truthy, and return that (fail after ``timeout`` seconds, naming
    ``what`` was awaited): never the ``False`` or ``None`` a probe answers while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s (last: {value!r})")
        time.sleep(interval)
