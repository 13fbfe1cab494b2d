"""``dockyard worker`` as a real process: runs jobs, stops cleanly on SIGTERM (handing unfinished jobs back), and
after a SIGKILL mid-job another worker runs the job again once its lease has run out."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.db.engine import Database
from dockyard.jobs.queue import QUEUED, RUNNING, SUCCEEDED
from tests.support.jobs import add_job, eventually, job_row, until_state
from tests.support.server import REPO_ROOT


class Workers:
    """Starts ``dockyard worker`` processes on one database, loading the test handlers; kills leftovers."""

    def __init__(self, tmp_path: Path, url: str) -> None:
        self.tmp_path = tmp_path
        self.url = url
        self.processes: list[subprocess.Popen[bytes]] = []
        self.log = tmp_path / "workers.log"

    def start(self, **settings: str) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO_ROOT),  # tests.support.job_handlers
            "DOCKYARD_DATA_DIR": str(self.tmp_path / "data"),
            "DOCKYARD_DATABASE_URL": self.url,
            "DOCKYARD_SECRET_KEY": "test-secret-for-job-workers",
            "DOCKYARD_JOBS_HANDLER_MODULES": "tests.support.job_handlers",
            "DOCKYARD_JOBS_POLL_SECONDS": "0.1",
            **{f"DOCKYARD_{name.upper()}": value for name, value in settings.items()},
        }
        with self.log.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "dockyard.cli.main", "worker", "--grace", "0.5"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO_ROOT,
            )
        self.processes.append(process)
        return process

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(tmp_path: Path, url: str) -> Iterator[Workers]:
    pool = Workers(tmp_path, url)
    yield pool
    pool.close()


def lines(path: Path) -> list[str]:
    with contextlib.suppress(FileNotFoundError):
        return path.read_text().splitlines()
    return []


async def test_worker_runs_jobs_and_stops_on_sigterm(db: Database, workers: Workers, tmp_path: Path) -> None:
    marks = tmp_path / "marks.txt"
    quick = await add_job(db, "test.touch", {"path": str(marks)})
    process = workers.start()
    await until_state(db, quick, SUCCEEDED, within=30)
    slow = await add_job(db, "test.sleep", {"path": str(marks), "seconds": 60})

    async def slow_started() -> bool:
        return f"start {slow} 1" in lines(marks)

    await eventually(slow_started, within=10)
    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 30) == 0, workers.log_text()
    row = await job_row(db, slow)
    assert (row.state, row.attempts, row.lease_owner) == (QUEUED, 0, None), workers.log_text()
    assert lines(marks) == [f"done {quick} 1", f"start {slow} 1"]
    assert "stopping" in workers.log_text()


async def test_a_job_whose_worker_was_killed_runs_again_elsewhere(
    db: Database, workers: Workers, tmp_path: Path
) -> None:
    marks = tmp_path / "marks.txt"
    job_id = await add_job(db, "test.sleep", {"path": str(marks), "seconds": 1.0})
    first = workers.start(jobs_lease_seconds="2")

    async def started() -> bool:
        return f"start {job_id} 1" in lines(marks)

    await eventually(started, within=30)
    first.send_signal(signal.SIGKILL)  # a crash: no shutdown handler runs
    await asyncio.to_thread(first.wait, 10)
    row = await job_row(db, job_id)
    assert (row.state, row.attempts) == (RUNNING, 1)  # held by a dead worker, until its lease runs out
    second = workers.start(jobs_lease_seconds="2")
    await until_state(db, job_id, SUCCEEDED, within=30)
    assert lines(marks) == [f"start {job_id} 1", f"start {job_id} 2", f"done {job_id} 2"]
    assert (await job_row(db, job_id)).attempts == 2
    second.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(second.wait, 30) == 0, workers.log_text()


def test_worker_refuses_a_handler_module_it_cannot_import(workers: Workers) -> None:
    process = workers.start(jobs_handler_modules="tests.support.no_such_module")
    assert process.wait(30) == 1
    assert "job handler module 'tests.support.no_such_module' cannot be imported" in workers.log_text()
