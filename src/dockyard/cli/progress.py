"""Progress displays for long commands (``gc``, ``vulndb import``): Rich's live display when standard error is a
terminal, nothing at all in scripts, pipes and under ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def interactive(quiet: bool = False) -> bool:
    """Whether to show progress: not ``quiet`` and standard error is a terminal."""
    return not quiet and sys.stderr.isatty()


class Tell(Protocol):
    """Told a phase's name when it starts, and None with how much was done in it."""

    def __call__(self, phase: str | None, amount: int = 1) -> None: ...


@contextmanager
def phase_progress(title: str, *, unit: str = "steps", quiet: bool = False) -> Iterator[Tell | None]:
    """A callback for work done in named phases: called with a phase's name when it starts and with None (and how
    many ``unit`` s, default 1) for work done in it; shows the current phase, the count and the time elapsed. None
    when not :func:`interactive`, so the work runs with no display."""
    if not interactive(quiet):
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[phase]}"),
        TextColumn(f"{{task.completed:,.0f}} {unit}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None, phase="")

        def tell(phase: str | None, amount: int = 1) -> None:
            if phase is None:
                progress.advance(task, amount)
            else:
                progress.update(task, phase=phase)

        yield tell
