"""Progress displays show on a terminal only, and never under --json."""

from __future__ import annotations

import io

import pytest

from dockyard.cli import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_quiet_in_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with progress.phase_progress("gc") as tell:
        assert tell is None


def test_shown_on_a_terminal_unless_quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    with progress.phase_progress("gc", quiet=True) as tell:
        assert tell is None
    with progress.phase_progress("importing", unit="documents") as tell:
        assert tell is not None
        tell("reading")
        tell(None, 250)
        tell(None)
    assert "importing" in terminal.getvalue()
