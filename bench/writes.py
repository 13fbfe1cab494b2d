"""Write-path load on one running server, with the server's CPU per operation as the stable figure.

On a shared machine throughput moves with whatever else runs; the CPU the server's process tree spends per
operation barely does. Each phase runs ``--clients`` concurrent keep-alive connections for ``--seconds``:

* ``tag``: manifest PUT by a new tag of one image (its blobs mounted once first),
* ``mount``: cross-repository mount of one blob into a new repository each time,
* ``image``: a small image (two monolithic blobs, HEAD + POST + PUT each, and a manifest PUT) into a new
  repository each time.

``python -m bench.writes --port 5000 --pid $(pgrep -of 'dockyard serve') --phases tag,mount,image`` prints
one JSON line per phase: ``{"phase", "ops", "seconds", "ops_per_s", "cpu_ms_per_op"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bench.data import OCI_MANIFEST, make_manifest, make_small_images
from bench.http import AsyncConnection, expect, path_of, with_query
from bench.servers import _cpu_seconds, process_tree

Op = Callable[[AsyncConnection, int], Awaitable[None]]


async def _push_blob(conn: AsyncConnection, repo: str, digest: str, data: bytes) -> None:
    head = await conn.request("HEAD", f"/v2/{repo}/blobs/{digest}")
    if head.status == 200:
        return
    started = expect(await conn.request("POST", f"/v2/{repo}/blobs/uploads/"), 202, what="start upload")
    target = with_query(path_of(started.header("location")), f"digest={digest}")
    expect(await conn.request("PUT", target, {"Content-Type": "application/octet-stream"}, data), 201, what="PUT")


async def _drive(host: str, port: int, clients: int, seconds: float, op: Op) -> int:
    deadline = time.perf_counter() + seconds
    counter = iter(range(1 << 62))
    done = 0

    async def client() -> None:
        nonlocal done
        conn = AsyncConnection(host, port)
        try:
            while time.perf_counter() < deadline:
                await op(conn, next(counter))
                done += 1
        finally:
            await conn.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return done


def _phase(
    name: str, host: str, port: int, run_id: str, images: int
) -> tuple[Callable[[], Coroutine[Any, Any, None]], Op]:
    source = make_small_images(1, prefix=f"w{run_id}/src")[0]
    manifest = make_manifest(source.config, source.layer)

    async def setup() -> None:
        conn = AsyncConnection(host, port)
        try:
            await _push_blob(conn, source.repo, source.config_digest, source.config)
            await _push_blob(conn, source.repo, source.layer_digest, source.layer)
            if name == "tag":
                for digest in (source.config_digest, source.layer_digest):
                    target = f"/v2/w{run_id}/tags/blobs/uploads/?mount={digest}&from={source.repo}"
                    expect(await conn.request("POST", target), 201, what="mount")
        finally:
            await conn.close()

    async def tag(conn: AsyncConnection, i: int) -> None:
        target = f"/v2/w{run_id}/tags/manifests/t{i:06d}"
        expect(await conn.request("PUT", target, {"Content-Type": OCI_MANIFEST}, manifest), 201, what="tag PUT")

    async def mount(conn: AsyncConnection, i: int) -> None:
        target = f"/v2/w{run_id}/m{i:06d}/blobs/uploads/?mount={source.layer_digest}&from={source.repo}"
        expect(await conn.request("POST", target), 201, what="mount")

    pool = make_small_images(images, prefix=f"w{run_id}/img") if name == "image" else []

    async def image(conn: AsyncConnection, i: int) -> None:
        one = pool[i % len(pool)]
        repo = f"{one.repo}-{i}"
        await _push_blob(conn, repo, one.config_digest, one.config)
        await _push_blob(conn, repo, one.layer_digest, one.layer)
        target = f"/v2/{repo}/manifests/latest"
        expect(await conn.request("PUT", target, {"Content-Type": OCI_MANIFEST}, one.manifest), 201, what="PUT")

    return setup, {"tag": tag, "mount": mount, "image": image}[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--pid", type=int, required=True, help="the server's top process (its tree is measured)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--phases", default="tag,mount,image")
    args = parser.parse_args(argv)
    run_id = os.urandom(3).hex()
    for name in args.phases.split(","):
        setup, op = _phase(name, args.host, args.port, run_id, images=2048)
        asyncio.run(setup())
        pids = process_tree(args.pid)
        cpu0, t0 = sum(_cpu_seconds(p) for p in pids), time.perf_counter()
        ops = asyncio.run(_drive(args.host, args.port, args.clients, args.seconds, op))
        elapsed = time.perf_counter() - t0
        cpu = sum(_cpu_seconds(p) for p in pids) - cpu0
        row = {
            "phase": name,
            "ops": ops,
            "seconds": round(elapsed, 2),
            "ops_per_s": round(ops / elapsed, 1),
            "cpu_ms_per_op": round(1000 * cpu / max(ops, 1), 2),
            "load": round(os.getloadavg()[0], 1),
        }
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
