"""The one place that knows the storage key layout (every driver draws its keys here).

blobs/<algorithm>/<first two hex>/<hex>     committed, content-addressed blobs
uploads/<upload id>                          in-progress uploads (private, growable): a file on the filesystem
uploads/<upload id>/info                     S3: marker, the upload exists
uploads/<upload id>/s/<offset, 20 digits>    S3: a segment of the upload, named by the offset of its first byte
"""

from __future__ import annotations

import re

_DIGEST_RE = re.compile(r"^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$")
_UPLOAD_ID_RE = re.compile(r"^[a-f0-9]{32}$")

BLOBS_PREFIX = "blobs/"
UPLOADS_PREFIX = "uploads/"
_MARKER = "info"
_SEGMENTS = "s/"


def blob_key(digest: str) -> str:
    """Key of a committed blob. Rejects anything that is not a well-formed digest (no path tricks)."""
    match = _DIGEST_RE.match(digest)
    if match is None:
        raise ValueError(f"not a digest: {digest[:80]!r}")
    algorithm, hexpart = match.groups()
    return f"{BLOBS_PREFIX}{algorithm}/{hexpart[:2]}/{hexpart}"


def upload_key(upload_id: str) -> str:
    if not _UPLOAD_ID_RE.match(upload_id):
        raise ValueError(f"not an upload id: {upload_id[:80]!r}")
    return f"{UPLOADS_PREFIX}{upload_id}"


def is_upload_id(name: str) -> bool:
    return _UPLOAD_ID_RE.match(name) is not None


# -- uploads kept as several objects (S3) ----------------------------------------------------------------------------


def upload_dir(upload_id: str) -> str:
    """The key prefix under which all objects of one upload live."""
    return upload_key(upload_id) + "/"


def upload_marker(directory: str) -> str:
    """Key of the object that says the upload under ``directory`` (from ``upload_dir``) exists."""
    return directory + _MARKER


def upload_segment(directory: str, start: int) -> str:
    """Key of the segment of the upload under ``directory`` whose first byte is at upload offset ``start``."""
    return f"{directory}{_SEGMENTS}{start:020d}"


def is_upload_marker(name: str) -> bool:
    """Whether ``name`` (a key relative to its upload's directory) is the marker."""
    return name == _MARKER


def segment_start(name: str) -> int | None:
    """The upload offset a segment key (relative to its upload's directory) names, or None if it is no segment."""
    if name.startswith(_SEGMENTS) and name[len(_SEGMENTS) :].isdigit():
        return int(name[len(_SEGMENTS) :])
    return None
