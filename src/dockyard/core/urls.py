"""Splitting a URL someone typed (a webhook's, an upstream's, a git remote's) without letting a malformed one
escape as an exception: ``urlsplit`` raises ``ValueError`` for an unbalanced ``[`` or a bad port, some of it only
when ``hostname`` or ``port`` is first read."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit


def split_url(url: str) -> SplitResult | None:
    """``url``'s parts, every one of them readable; None when it is not a URL ``urlsplit`` can take apart."""
    try:
        parts = urlsplit(url)
        _ = parts.hostname, parts.port
    except ValueError:
        return None
    return parts
