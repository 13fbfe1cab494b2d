"""The one place that knows the storage key layout.

blobs/<algorithm>/<first two hex>/<hex>     committed, content-addressed blobs
uploads/<upload id>                          in-progress uploads (private, growable)
"""

from __future__ import annotations

import re

_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$")
_UPLOAD_ID_RE = re.compile(r"^[a-f0-9]{32}$")


def blob_key(digest: str) -> str:
    """Key of a committed blob. Rejects anything that is not a well-formed digest (no path tricks)."""
    match = _DIGEST_RE.match(digest)
    if match is None:
        raise ValueError(f"not a digest: {digest[:80]!r}")
    algorithm, hexpart = match.groups()
    return f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"


def upload_key(upload_id: str) -> str:
    if not _UPLOAD_ID_RE.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id[:80]!r}")
    return f"uploads/{upload_id}"


UPLOADS_PREFIX = "uploads/"
