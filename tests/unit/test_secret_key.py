"""The embedded deployment's server secret (``<data_dir>/secret.key``): made once, on the first start, even when
several processes (replicas, workers) start on a new data directory at the same moment — all of them read the
same whole key, none fails."""

from __future__ import annotations

import multiprocessing
import os
import stat
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from dockyard.settings import load_settings
from dockyard.startup import resolve_secret_key


def _resolve(data_dir: str, barrier: Barrier, results: Queue[str]) -> None:
    settings = load_settings(data_dir=Path(data_dir))
    barrier.wait()
    try:
        results.put(str(resolve_secret_key(settings).secret_key))
    except Exception as exc:
        results.put(f"failed: {exc!r}")


def test_made_once_and_kept(tmp_path: Path) -> None:
    first = resolve_secret_key(load_settings(data_dir=tmp_path / "data")).secret_key
    assert first
    assert len(first) >= 48
    assert resolve_secret_key(load_settings(data_dir=tmp_path / "data")).secret_key == first
    key = tmp_path / "data" / "secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert os.listdir(tmp_path / "data") == ["secret.key"]  # nothing half-made left beside it


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    count = 6
    context = multiprocessing.get_context("spawn")
    for round_ in range(5):
        data_dir = tmp_path / f"data{round_}"
        barrier = context.Barrier(count)
        results: Queue[str] = context.Queue()
        processes = [context.Process(target=_resolve, args=(str(data_dir), barrier, results)) for _ in range(count)]
        for process in processes:
            process.start()
        keys = [results.get(timeout=60) for _ in processes]
        for process in processes:
            process.join(timeout=60)
        assert len(set(keys)) == 1, keys
        assert keys[0]
        assert not keys[0].startswith("failed")
        assert (data_dir / "secret.key").read_text().strip() == keys[0]
        assert os.listdir(data_dir) == ["secret.key"]
