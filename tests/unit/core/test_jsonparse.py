"""core.jsonparse: the nesting scan agrees with the parser, and deep documents are refused before parsing."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from dockyard.core.jsonparse import JSONTooDeep, loads_limited, nesting_depth


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _document(rng: random.Random, level: int = 0) -> Any:
    roll = rng.random()
    if level > 8 or roll < 0.3:
        return rng.choice(['a\\"[{', "\\", 'x]}"', "", 1, None, "\\\\", '"'])
    if roll < 0.65:
        return [_document(rng, level + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(["k", "[", "]", '\\"{', "}"]): _document(rng, level + 1) for _ in range(rng.randint(0, 3))}


def test_the_scan_measures_what_the_parser_sees() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        doc = _document(rng)
        text = json.dumps(doc, ensure_ascii=rng.random() < 0.5)
        assert nesting_depth(text) == _depth(doc), text
        assert nesting_depth(text.encode()) == _depth(doc), text


@pytest.mark.parametrize("body", [b"[" * 100_000, b"[" * 65 + b"]" * 65, b'{"a":' * 65 + b"1" + b"}" * 65])
def test_deep_documents_are_refused(body: bytes) -> None:
    with pytest.raises(JSONTooDeep) as caught:
        loads_limited(body)
    assert isinstance(caught.value, json.JSONDecodeError)


def test_documents_within_the_limit_parse() -> None:
    body = b"[" * 64 + b"]" * 64
    assert _depth(loads_limited(body)) == 64
    assert loads_limited('{"a": "' + "[" * 72 + '"}') == {"a": "[" * 72}
    assert loads_limited(b"[1, 2]", max_depth=1) == [1, 2]
    with pytest.raises(JSONTooDeep):
        loads_limited(b"[[1]]", max_depth=1)
