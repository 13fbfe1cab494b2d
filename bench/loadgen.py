"""A small closed-loop HTTP/1.1 load generator for what wrk cannot do: HEAD.

wrk 4.1 never completes a HEAD request whose response carries ``Content-Length`` (its http-parser waits for
a body that does not come; wg/wrk#198), so the manifest HEAD rate is measured with this instead, shaped like
``wrk -t T -c C -d D``: T processes, C keep-alive connections in all, each sending its next request as soon
as the previous response is complete. The benchmark runs it for GET too, so the two numbers compare.

``python -m bench.loadgen --url http://127.0.0.1:5000/v2/x/manifests/latest --method HEAD -c 64 -t 2 -d 10``
prints ``{"requests": N, "bad_status": B, "errors": E, "seconds": S, "rps": R}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, cast
from urllib.parse import urlsplit


@dataclass
class Counters:
    requests: int = 0
    bad_status: int = 0
    errors: int = 0


class _Client(asyncio.Protocol):
    """One connection: send, parse the response head (and skip the body unless HEAD), send again."""

    def __init__(self, request: bytes, head: bool, deadline: float, counters: Counters, done: asyncio.Future[None]):
        self.request = request
        self.head = head
        self.deadline = deadline
        self.counters = counters
        self.done = done
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            body = 0
            if not self.head:
                head = bytes(self.buf[:end]).lower()
                at = head.find(b"\ncontent-length:")
                if at >= 0:
                    stop = head.find(b"\r", at + 1)
                    body = int(head[at + 16 : stop if stop >= 0 else None])
                elif b"transfer-encoding: chunked" in head:
                    self._fail()
                    return
            if len(self.buf) < end + 4 + body:
                return
            if not self.buf.startswith(b"HTTP/1.1 2") and not self.buf.startswith(b"HTTP/1.0 2"):
                self.counters.bad_status += 1
            self.counters.requests += 1
            del self.buf[: end + 4 + body]
            if time.perf_counter() >= self.deadline:
                self._finish()
                return
            assert self.transport is not None
            self.transport.write(self.request)

    def _fail(self) -> None:
        self.counters.errors += 1
        self._finish()

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if time.perf_counter() < self.deadline:
                self.counters.errors += 1
            self.done.set_result(None)


async def _run(
    host: str, port: int, request: bytes, head: bool, connections: int, seconds: float
) -> tuple[Counters, float]:
    loop = asyncio.get_running_loop()
    counters = Counters()
    start = time.perf_counter()
    deadline = start + seconds
    futures: list[asyncio.Future[None]] = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        futures.append(done)
        await loop.create_connection(partial(_Client, request, head, deadline, counters, done), host, port)
    await asyncio.gather(*futures)
    return counters, time.perf_counter() - start


def _request(method: str, path: str, host: str, headers: list[str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _worker(args: argparse.Namespace) -> dict[str, Any]:
    url = urlsplit(args.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    path = url.path + (f"?{url.query}" if url.query else "")
    request = _request(args.method, path, f"{host}:{port}", args.header)
    coro = _run(host, port, request, args.method == "HEAD", args.connections, args.duration)
    try:
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            counters, elapsed = runner.run(coro)
    except ImportError:
        counters, elapsed = asyncio.run(coro)
    return {
        "requests": counters.requests,
        "bad_status": counters.bad_status,
        "errors": counters.errors,
        "seconds": elapsed,
        "rps": counters.requests / elapsed,
    }


def run_load(
    url: str, *, method: str, connections: int, threads: int, seconds: float, headers: dict[str, str]
) -> dict[str, Any]:
    """``threads`` worker processes sharing ``connections``; their numbers summed."""
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    procs = []
    for i in range(threads):
        share = connections // threads + (1 if i < connections % threads else 0)
        command = [sys.executable, "-m", "bench.loadgen", "--worker", "--url", url, "--method", method]
        command += ["-c", str(share), "-d", str(seconds), *header_args]
        procs.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
    total: dict[str, Any] = {"requests": 0, "bad_status": 0, "errors": 0, "rps": 0.0}
    try:
        for proc in procs:
            out, _ = proc.communicate(timeout=seconds + 60)
            if proc.returncode != 0:
                raise RuntimeError(f"load generator failed with {proc.returncode}")
            result = json.loads(out)
            for key in total:
                total[key] += result[key]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="GET", choices=["GET", "HEAD"])
    parser.add_argument("-c", "--connections", type=int, default=64)
    parser.add_argument("-t", "--threads", type=int, default=2, help="worker processes")
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds")
    parser.add_argument("-H", "--header", action="append", default=[], help="'Name: value', repeatable")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(_worker(args)))
        return 0
    headers = dict(h.split(":", 1) for h in args.header)
    result = run_load(
        args.url,
        method=args.method,
        connections=args.connections,
        threads=args.threads,
        seconds=args.duration,
        headers={k.strip(): v.strip() for k, v in headers.items()},
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
