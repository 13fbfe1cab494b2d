"""Small helpers for tests that drive a BlobStore directly."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator


def new_id() -> str:
    return uuid.uuid4().hex


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([c async for c in chunks])
