"""Backoff with full jitter, and the handler outcome exceptions."""

from __future__ import annotations

import random

import pytest

from dockyard.jobs.handlers import Retry, backoff_delay


def highest(low: float, high: float) -> float:
    return high


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    ceilings = [backoff_delay(attempt, base=2.0, cap=3600.0, rand=highest) for attempt in range(1, 15)]
    assert ceilings[:6] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
    assert ceilings[-3:] == [3600.0, 3600.0, 3600.0]
    assert backoff_delay(10_000, base=2.0, cap=3600.0, rand=highest) == 3600.0  # no overflow


def test_backoff_draws_uniformly_below_the_ceiling() -> None:
    rng = random.Random(6)
    draws = [backoff_delay(5, base=2.0, cap=3600.0, rand=rng.uniform) for _ in range(2000)]
    assert all(0.0 <= draw <= 32.0 for draw in draws)
    assert 14.0 < sum(draws) / len(draws) < 18.0  # mean of U(0, 32)
    assert min(draws) < 1.0 and max(draws) > 31.0  # noqa: PT018 - one property: spread over the range


def test_retry_rejects_a_negative_delay() -> None:
    with pytest.raises(ValueError, match="negative"):
        Retry(after=-1)
    assert Retry().reason == "retry requested"
