"""Fixtures of the build tests: a git server on loopback (``tests/support/gitserver.py``). The pipeline's modules
choose the test executor for their servers themselves (``tests.support.build_executor.PIPELINE_ENV``), so tests of
the real executor under ``executor/`` are not handed it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.gitserver import GitServer


@pytest.fixture(scope="module")
def gitserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git")).start()
    yield server
    server.stop()
