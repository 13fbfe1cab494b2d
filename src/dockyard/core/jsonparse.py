"""JSON from clients, parsed with its nesting depth bounded.

Python's ``json`` parser recurses once per nested array or object, so a body of 100,000 ``[`` ends in a
``RecursionError`` (a 500 where the client deserved a 400). :func:`loads_limited` measures the depth first with
a cheap scan — escapes and strings dropped, the brackets left over summed up, all in C — and
refuses anything deeper than ``max_depth`` before the recursive parse starts. Every JSON document the server
takes from a client (manifests, image configs, signatures, key envelopes, Hub API bodies) goes through it.
"""

from __future__ import annotations

import json
from itertools import accumulate
from typing import Any

MAX_DEPTH = 64  # far deeper than any manifest, config, signature or API body; far below the recursion limit

_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


class JSONTooDeep(json.JSONDecodeError):
    """The document nests arrays and objects deeper than allowed. A ``JSONDecodeError`` (so a ``ValueError``):
    callers that already turn malformed JSON into their own invalid-input error handle it unchanged."""

    def __init__(self, max_depth: int) -> None:
        super().__init__(f"JSON nests deeper than {max_depth} levels", "", 0)
        self.max_depth = max_depth


def nesting_depth(data: str | bytes) -> int:
    """How deeply ``data`` nests arrays and objects (exact for valid JSON; for invalid JSON a number the parser
    will not get past anyway). Linear time, all of it in C."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    # Escaped backslashes first (pairs, from the left, as a JSON string reads them), then escaped quotes: every
    # quote left delimits a string, so splitting on quotes puts the text outside strings at even positions.
    raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    outside = b"".join(raw.split(b'"')[::2])
    brackets = outside.translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def check_depth(data: str | bytes, max_depth: int = MAX_DEPTH) -> None:
    """Raise :class:`JSONTooDeep` when ``data`` nests deeper than ``max_depth``."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    # Fewer brackets than the limit cannot nest past it: the common case costs two C-level counts.
    if raw.count(b"[") + raw.count(b"{") > max_depth and nesting_depth(raw) > max_depth:
        raise JSONTooDeep(max_depth)


def loads_limited(data: str | bytes, *, max_depth: int = MAX_DEPTH, **kwargs: Any) -> Any:
    """``json.loads`` for client input: raises :class:`JSONTooDeep` (a ``json.JSONDecodeError``) instead of
    recursing past ``max_depth``; any other error is ``json.loads``'s own."""
    check_depth(data, max_depth)
    return json.loads(data, **kwargs)
