"""What a test server's blob store holds, whichever driver it runs on (files under the data directory, or a
bucket on the session's moto server) — for tests that check what is stored behind the API."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from tests.support.server import Server


class StorageView:
    def __init__(self, server: Server) -> None:
        url = server.env.get("DOCKYARD_STORAGE_URL", "")
        self.s3 = url.startswith("s3://")
        self.root = server.data_dir / "storage"
        if self.s3:
            parts = urlsplit(url)
            self.bucket = parts.netloc
            self.prefix = parts.path.strip("/") + "/" if parts.path.strip("/") else ""

    # -- S3 ------------------------------------------------------------------------------------------------------

    @property
    def _client(self) -> Any:
        from tests.support.s3 import shared_moto_server

        return shared_moto_server().client

    def _objects(self, prefix: str) -> dict[str, int]:
        sizes: dict[str, int] = {}
        for page in self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        ):
            for obj in page.get("Contents", []):
                sizes[obj["Key"][len(self.prefix) :]] = obj["Size"]
        return sizes

    # -- both ----------------------------------------------------------------------------------------------------

    def blobs(self) -> dict[str, int]:
        """Committed blobs: ``algorithm:hex`` → size. Anything else under ``blobs/`` is reported as-is."""
        if self.s3:
            entries = self._objects("blobs/")
        else:
            base = self.root / "blobs"
            entries = {str(p.relative_to(self.root)): p.stat().st_size for p in base.rglob("*") if p.is_file()}
        result: dict[str, int] = {}
        for key, size in entries.items():
            parts = key.split("/")  # blobs/<alg>/<xx>/<hex>
            name = f"{parts[1]}:{parts[-1]}" if len(parts) == 4 and parts[0] == "blobs" else key
            result[name] = size
        return result

    def read_blob(self, digest: str) -> bytes:
        algorithm, hexpart = digest.split(":", 1)
        key = f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"
        if self.s3:
            body: bytes = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"].read()
            return body
        return (self.root / key).read_bytes()

    def lose_blob(self, digest: str) -> None:
        """Delete a committed blob behind the server's back (a storage accident)."""
        algorithm, hexpart = digest.split(":", 1)
        key = f"blobs/{algorithm}/{hexpart[:2]}/{hexpart}"
        if self.s3:
            self._client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        else:
            (self.root / key).unlink()
        assert digest not in self.blobs()

    def assert_blobs_intact(self) -> None:
        """Every committed blob is complete: its bytes hash to its name. No temporary or partial objects."""
        for name in self.blobs():
            assert ":" in name, f"unexpected object under blobs/: {name}"
            algorithm, hexpart = name.split(":", 1)
            assert hashlib.new(algorithm, self.read_blob(name)).hexdigest() == hexpart, name

    def upload_ids(self) -> set[str]:
        if self.s3:
            return {key.split("/")[1] for key in self._objects("uploads/") if key.count("/") >= 2}
        return {p.name for p in (self.root / "uploads").iterdir() if not p.name.startswith(".")}

    def upload_size(self, upload_id: str) -> int:
        """Bytes stored for an upload so far (on S3: the sum of its segments)."""
        if self.s3:
            return sum(self._objects(f"uploads/{upload_id}/s/").values())
        path = self.root / "uploads" / upload_id
        return path.stat().st_size if path.exists() else 0

    def break_storage(self) -> None:
        """Make the store unusable (the readiness probe must notice); ``repair_storage`` undoes it."""
        if self.s3:
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
                for obj in page.get("Contents", []):
                    self._client.delete_object(Bucket=self.bucket, Key=obj["Key"])
            self._client.delete_bucket(Bucket=self.bucket)
        else:
            shutil.rmtree(self.root / "uploads")

    def repair_storage(self) -> None:
        if self.s3:
            self._client.create_bucket(Bucket=self.bucket)
        else:
            Path(self.root / "uploads").mkdir()
