"""Builds a BlobStore from a storage URL. An unknown scheme is a startup error, never a silent fallback."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from dockyard.storage.base import BlobStore
from dockyard.storage.filesystem import FilesystemBlobStore


class UnknownDriver(ValueError):
    """The storage URL names a driver this build does not have."""


def open_blob_store(url: str, *, fsync: bool = True) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return FilesystemBlobStore(Path(parts.path), fsync=fsync)
    raise UnknownDriver(f"unknown storage driver {parts.scheme!r} in {url!r} (known: file)")
