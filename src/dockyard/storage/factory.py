"""Builds a BlobStore from a storage URL. An unknown scheme is a startup error, never a silent fallback.

``file:///path``                       FilesystemBlobStore
``s3://bucket/prefix?endpoint=…``      S3BlobStore (see dockyard.storage.s3.url for the parameters)
"""

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
    if parts.scheme == "s3":
        # Imported here so that filesystem-only deployments never load aiobotocore.
        from dockyard.storage.s3 import S3BlobStore

        return S3BlobStore.from_url(url)
    raise UnknownDriver(f"unknown storage driver {parts.scheme!r} in {url!r} (known: file, s3)")
