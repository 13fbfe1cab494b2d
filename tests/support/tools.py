"""Finding system tools: a missing tool skips a test locally and fails it under CI=true."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def missing(message: str) -> NoReturn:
    """Skip the test for a missing system dependency, or fail it under CI=true (where make test installs it)."""
    if under_ci():
        pytest.fail(message)
    pytest.skip(message)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (make test installs it when run as root)")
    return path
