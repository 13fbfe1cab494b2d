"""Progress displays for long commands (``gc``, ``vulndb import``): Rich's live display when standard error is a
terminal, nothing at all in scripts, pipes and under ``--json``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


def interactive(quiet: bool = False) -> bool:
    """Whether to show progress: not ``quiet`` and standard error is a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def phase_progress(title: str, *, quiet: bool = False) -> Iterator[Callable[[str | None], None] | None]:
    """A callback for work done in named phases: called with a phase's name when it starts and with None for each
    step done in it; shows the current phase, its steps and the time elapsed. None when not :func:`interactive`,
    so the work runs with no display."""
    if not interactive(quiet):
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[phase]}"),
        TextColumn("{task.completed} steps"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(title, total=None, phase="")

        def tell(phase: str | None) -> None:
            if phase is None:
                progress.advance(task)
            else:
                progress.update(task, phase=phase)

        yield tell
