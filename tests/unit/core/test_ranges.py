from __future__ import annotations

import pytest

from dockyard.core.ranges import parse_range
from dockyard.errors import RangeNotSatisfiable


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-0", (0, 1)),
        ("bytes=2-5", (2, 6)),
        ("bytes=5-", (5, 10)),
        ("bytes=-3", (7, 10)),
        ("bytes=-30", (0, 10)),
        ("bytes=8-100", (8, 10)),
        ("bytes=0-1,4-5", None),
    ],
)
def test_parse(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 10) == expected


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=5-2", "items=0-1", "bytes=10-", "bytes=-0", "bytes=-", "0-1"])
def test_unsatisfiable_or_malformed(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 10)
