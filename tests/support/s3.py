"""A real S3-protocol server for tests: moto's standalone server in a subprocess on a free loopback port.

One server serves the whole test process (``shared_moto_server()``, or the session-scoped ``moto_server`` fixture
that wraps it); tests isolate themselves by bucket or key prefix. ``shared_moto_server()`` also puts moto's fake
credentials into ``os.environ``, so stores built from a storage URL alone (``open_blob_store``) and subprocesses
started afterwards find them. To run a whole registry against S3::

    moto = shared_moto_server()
    bucket = moto.make_bucket()
    DockyardServer(data_dir, env={**moto.env, "DOCKYARD_STORAGE_URL": moto.storage_url(bucket)})
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import botocore.session
import httpx
import pytest
from botocore.config import Config

from tests.support.ports import free_port
from tests.support.processes import stop


class MotoServer:
    """``python -m moto.server`` bound to 127.0.0.1; start, stop, and helpers to make buckets and storage URLs."""

    access_key = "testing"
    secret_key = "testing"
    region = "us-east-1"

    def __init__(self, *, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path or Path(tempfile.gettempdir()) / f"moto-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that talks to this server through the standard AWS credential chain."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def apply_env(self) -> None:
        """Make this process use the fake credentials (a developer's AWS profile must not leak into tests)."""
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_PROFILE"):
            os.environ.pop(name, None)
        os.environ.update(self.env)

    def start(self, timeout: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "MOTO_PORT": str(self.port)},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.endpoint}/moto-api/", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto did not become ready: {self.log_tail()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    @property
    def client(self) -> Any:
        """A synchronous botocore S3 client for setup and inspection (not the code under test)."""
        if self._client is None:
            self._client = botocore.session.get_session().create_client(
                "s3",
                endpoint_url=self.endpoint,
                region_name=self.region,
                aws_access_key_id=self.access_key,
                aws_secret_access_key=self.secret_key,
                config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 3}),
            )
        return self._client

    def make_bucket(self, name: str | None = None) -> str:
        """Create a bucket (a fresh random name by default) and return its name."""
        bucket = name or f"dockyard-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(Bucket=bucket)
        return bucket

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key under ``prefix``, for tests that inspect what a driver left behind."""
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return keys

    def storage_url(self, bucket: str, prefix: str = "", **params: str) -> str:
        """``s3://bucket/prefix?endpoint=…&region=…`` plus any extra driver parameters."""
        query = urlencode({"endpoint": self.endpoint, "region": self.region, **params})
        return f"s3://{bucket}/{prefix.strip('/')}?{query}"


_lock = threading.Lock()
_shared: MotoServer | None = None


def shared_moto_server() -> MotoServer:
    """The test process's one moto server, started on first use and stopped at exit."""
    global _shared
    with _lock:
        if _shared is None:
            server = MotoServer()
            server.start()
            server.apply_env()
            atexit.register(server.stop)
            _shared = server
        return _shared


@pytest.fixture(scope="session")
def moto_server() -> MotoServer:
    """Session-scoped fixture over ``shared_moto_server()`` (import it into a test module or conftest)."""
    return shared_moto_server()
