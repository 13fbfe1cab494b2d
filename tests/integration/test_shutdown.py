"""Graceful shutdown: SIGTERM lets an in-flight upload finish, then the server exits."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx

from tests.support.oci import sha256, unique_name
from tests.support.server import DockyardServer


def test_sigterm_finishes_in_flight_upload(fresh_server: DockyardServer) -> None:
    repo = unique_name()
    chunk = b"x" * 256 * 1024
    data = chunk * 24
    started = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for i in range(24):
            if i == 4:
                started.set()
            time.sleep(0.1)
            yield chunk

    with httpx.Client(base_url=fresh_server.url, timeout=60) as client:
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
        result: dict[str, httpx.Response] = {}
        thread = threading.Thread(
            target=lambda: result.update(put=client.put(location, params={"digest": sha256(data)}, content=slow_body()))
        )
        thread.start()
        assert started.wait(10)
        assert fresh_server.process is not None
        fresh_server.process.send_signal(signal.SIGTERM)
        thread.join(60)
        assert result["put"].status_code == 201, result["put"].text
        # uvicorn finishes in-flight requests, then re-raises SIGTERM so the exit status says how it stopped.
        assert fresh_server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    fresh_server.process = None
    fresh_server.start()
    with httpx.Client(base_url=fresh_server.url) as client:
        assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data
