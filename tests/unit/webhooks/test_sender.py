"""Outcome table and Retry-After parsing (the network paths are in tests/integration/test_webhook_sender.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from dockyard.webhooks.sender import RETRY_AFTER_CAP_SECONDS, classify, parse_retry_after


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "delivered"),
        (201, "delivered"),
        (202, "delivered"),
        (204, "delivered"),
        (299, "delivered"),
        (410, "gone"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (504, "retry"),
        (599, "retry"),
        (300, "failed"),
        (301, "failed"),
        (302, "failed"),
        (304, "failed"),
        (307, "failed"),
        (308, "failed"),
        (400, "failed"),
        (401, "failed"),
        (403, "failed"),
        (404, "failed"),
        (405, "failed"),
        (409, "failed"),
        (413, "failed"),
        (422, "failed"),
    ],
)
def test_classify(status: int, outcome: str) -> None:
    assert classify(status) == outcome


NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("999999", RETRY_AFTER_CAP_SECONDS),
        ("Wed, 01 May 2024 12:00:30 GMT", 30.0),
        ("Wed, 01 May 2024 11:00:00 GMT", 0.0),  # in the past
        ("Thu, 02 May 2024 12:00:00 GMT", RETRY_AFTER_CAP_SECONDS),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds
