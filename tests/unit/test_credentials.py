"""The one parser of ``Authorization`` headers both HTTP surfaces use."""

from __future__ import annotations

import base64

import pytest

from dockyard.http.credentials import Credentials, parse_authorization


def basic(payload: bytes) -> str:
    return "Basic " + base64.b64encode(payload).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("", Credentials("none")),
        ("Bearer abc.def", Credentials("bearer", "abc.def")),
        ("bEaReR   abc  ", Credentials("bearer", "abc")),
        (
            basic(b"alice:s3cr:et"),
            Credentials("basic", base64.b64encode(b"alice:s3cr:et").decode(), "alice", "s3cr:et"),
        ),
        (basic(b"alice:"), Credentials("basic", base64.b64encode(b"alice:").decode(), "alice", "")),
        ("Digest x=1", Credentials("other", "x=1")),
    ],
)
def test_parses_what_was_sent(header: str, expected: Credentials) -> None:
    assert parse_authorization(header) == expected


@pytest.mark.parametrize(
    "header",
    [basic(b"no-colon"), "Basic not*base64", basic("é".encode("latin-1") + b":x"), "Basic"],
)
def test_malformed_basic_is_flagged_not_guessed(header: str) -> None:
    credentials = parse_authorization(header)
    assert credentials.scheme == "basic"
    assert credentials.malformed_basic
    assert (credentials.username, credentials.password) == (None, "")
