"""HTTP ``Range`` request parsing for blob downloads (RFC 9110 §14), single byte ranges."""

from __future__ import annotations

import re

from dockyard.errors import RangeNotSatisfiable

_RANGE_RE = re.compile(r"^bytes=\s*([0-9]{0,19})\s*-\s*([0-9]{0,19})\s*$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return ``(start, end_exclusive)`` for a single satisfiable range, or None to serve the whole body.

    Multiple ranges are answered with the whole body (RFC 9110 lets a server ignore Range). A malformed or
    unsatisfiable range raises ``RangeNotSatisfiable`` (416 with ``Content-Range: bytes */size``), as Go's
    ``http.ServeContent`` — and so the reference registry — does.
    """
    if header is None:
        return None
    value = header.strip()
    if "," in value and value.lower().startswith("bytes="):
        return None
    match = _RANGE_RE.match(value)
    if match is None:
        raise RangeNotSatisfiable("range", "invalid Range header", {"Range": header[:100]})
    first, last = match.group(1), match.group(2)
    if first == "" and last == "":
        raise RangeNotSatisfiable("range", "invalid Range header", {"Range": header[:100]})
    if first == "":
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable("range", "range not satisfiable", {"Range": header[:100], "size": size})
        return max(size - suffix, 0), size
    start = int(first)
    end = int(last) + 1 if last else size
    if last and int(last) < start:
        raise RangeNotSatisfiable("range", "invalid Range header", {"Range": header[:100]})
    if start >= size:
        raise RangeNotSatisfiable("range", "range not satisfiable", {"Range": header[:100], "size": size})
    return start, min(end, size)
