"""How every ``dockyard`` command prints for scripts: ``--json`` output (views, datetimes, enums → JSON values) and
errors as ``{"error": {"code", "message", "detail"}}`` on standard output with a non-zero exit status. Light on
imports (click and the standard library), so that the top-level command and ``dockyard serve`` can use it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import click

from dockyard.errors import DomainError

F = TypeVar("F", bound=Callable[..., Any])


def describe_error(exc: DomainError) -> str:
    if exc.detail in (None, {}, []):
        return exc.message
    return f"{exc.message} ({json.dumps(jsonable(exc.detail), separators=(', ', ': '))})"


class JsonCommand(click.Command):
    """A command whose errors, under ``--json``, are ``{"error": {...}}`` on standard output (exit status as
    without ``--json``: 1 for a failure, 2 for a usage error)."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        wants_json = "--json" in args and "--help" not in args  # (parsing consumes ``args``)
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            if wants_json:
                _exit_with_json_error(exc)
            raise

    def invoke(self, ctx: click.Context) -> Any:
        as_json = bool(ctx.params.get("as_json"))
        try:
            return super().invoke(ctx)
        except DomainError as exc:
            if as_json:
                _exit_with_json_error(exc)
            raise click.ClickException(describe_error(exc)) from None
        except click.ClickException as exc:
            if as_json:
                _exit_with_json_error(exc)
            raise


class Group(click.Group):
    """A group whose commands (and subgroups) are :class:`JsonCommand` s."""

    command_class = JsonCommand
    group_class = type  # subgroups are Groups too


def error_document(exc: DomainError | click.ClickException) -> dict[str, Any]:
    """The ``{"error": …}`` document of a failed command: ``code`` is the domain error's class (``not_found``,
    ``conflict``, …), ``usage`` for a usage error, ``failed`` otherwise."""
    if isinstance(exc, DomainError):
        code = "".join(f"_{c.lower()}" if c.isupper() else c for c in type(exc).__name__).lstrip("_")
        return {"error": {"code": code, "subject": exc.subject, "message": exc.message, "detail": jsonable(exc.detail)}}
    code = "usage" if isinstance(exc, click.UsageError) else "failed"
    return {"error": {"code": code, "message": exc.format_message(), "detail": None}}


def _exit_with_json_error(exc: DomainError | click.ClickException) -> None:
    click.echo(json.dumps(error_document(exc), indent=2, sort_keys=True))
    raise SystemExit(exc.exit_code if isinstance(exc, click.ClickException) else 1)


def json_option(function: F) -> F:
    """``--json``: the command prints JSON, errors included (with :class:`JsonCommand`)."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts); errors too.")(function)


def json_command(group: click.Group, name: str | None = None, **attrs: Any) -> Callable[[F], click.Command]:
    """Register ``function`` on ``group`` as a :class:`JsonCommand` (add :func:`json_option` to it)."""
    return group.command(name, cls=JsonCommand, **attrs)


def settings_options(function: F) -> F:
    """``--config`` and ``--data-dir``: which server's settings and data the command works on."""
    function = click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=None,
        help="The server's data directory (default: $DOCKYARD_DATA_DIR, else ./data).",
    )(function)
    return click.option(
        "--config",
        "config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        help="A TOML settings file (default: $DOCKYARD_CONFIG).",
    )(function)


def init_option(function: F) -> F:
    return click.option(
        "--init", is_flag=True, help="Create the database when there is none yet (else that is an error)."
    )(function)


def jsonable(value: Any) -> Any:
    """Views (frozen dataclasses), datetimes, levels and collections → JSON values."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: jsonable(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.name.lower()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value
