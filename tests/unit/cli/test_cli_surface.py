"""The whole ``dockyard`` command tree, walked: every command says what it does, every option has help, and every
command but the long-running servers takes ``--json`` (its errors then come as ``{"error": …}``)."""

from __future__ import annotations

from collections.abc import Iterator

import click

from dockyard.cli.main import main
from dockyard.cli.output import JsonCommand

LONG_RUNNING = {"serve", "worker", "builder"}  # they serve until stopped: nothing to print as JSON


def commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, name
            yield from commands(sub, (*path, name))
    else:
        yield " ".join(path), command


def test_the_tree_is_large_enough_to_mean_something() -> None:
    assert len(list(commands(main))) > 80


def test_every_command_and_option_has_help() -> None:
    undocumented = [name for name, command in commands(main) if not (command.help or "").strip()]
    assert undocumented == []
    bare = [
        f"{name} {'/'.join(p.opts)}"
        for name, command in commands(main)
        for p in command.params
        if isinstance(p, click.Option) and not (p.help or "").strip()
    ]
    assert bare == []


def test_every_command_takes_json_and_reports_errors_as_json() -> None:
    without = [
        name
        for name, command in commands(main)
        if name not in LONG_RUNNING
        and not (isinstance(command, JsonCommand) and any(p.name == "as_json" for p in command.params))
    ]
    assert without == []
