"""Malformed URLs someone typed are refused as bad input (``Invalid``), never a 500: ``urlsplit`` raises
``ValueError`` for some of them, at times only when the host or port is read (the fuzzer found
``PATCH /api/v2/webhooks/{uuid}`` answering 500 for one)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dockyard.builds.git import validate_git_url
from dockyard.core.urls import split_url
from dockyard.errors import Invalid
from dockyard.proxy.manage import normalize_url
from dockyard.webhooks.validation import validate_url as validate_webhook_url

MALFORMED = ["http://[", "http://[::1", "https://host:99999/x", "https://host:port/x", "http://]x[/", "https://[zz]/"]


@pytest.mark.parametrize("url", MALFORMED)
def test_split_url_says_none_instead_of_raising(url: str) -> None:
    assert split_url(url) is None


def test_split_url_parses_good_ones() -> None:
    parts = split_url("https://user@[::1]:8443/hooks?x=1")
    assert parts is not None
    assert (parts.scheme, parts.hostname, parts.port, parts.path) == ("https", "::1", 8443, "/hooks")


@pytest.mark.parametrize("url", MALFORMED)
@pytest.mark.parametrize("validate", [validate_webhook_url, validate_git_url, normalize_url])
def test_validators_refuse_malformed_urls(validate: Callable[[str], str], url: str) -> None:
    with pytest.raises(Invalid):
        validate(url)
