"""What the administration commands share: the ``--config``/``--data-dir``/``--json`` options, running a service
call against the (migrated) database as the server's operator, and printing results as tables or JSON.

The commands act as the *open* principal: whoever can run ``dockyard`` on the server machine with access to its
data directory or database is the site operator. Domain errors become a one-line ``Error: …`` and exit status 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from dockyard.authz.principal import OPEN, Principal
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.errors import DomainError
from dockyard.logs import configure_logging
from dockyard.repos.access import full_name
from dockyard.settings import Settings, SettingsError, load_settings
from dockyard.storage.base import BlobStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class Operator:
    """One administration command's context: the settings, the acting principal and the output format."""

    settings: Settings
    as_json: bool
    actor: Principal = OPEN

    def run(self, work: Callable[[Database], Awaitable[T]]) -> T:
        """Open the database (migrating it first, so that commands work on a fresh data directory), run
        ``work``, close it. A domain error ends the command with its message."""

        async def main() -> T:
            from dockyard.migrations.runner import upgrade

            db = Database(self.settings.effective_database_url)
            try:
                await upgrade(db)
                return await work(db)
            finally:
                await db.close()

        try:
            return asyncio.run(main())
        except DomainError as exc:
            raise click.ClickException(describe_error(exc)) from None

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print ``data`` as JSON with ``--json``, else call ``human`` to print it for people."""
        if self.as_json:
            click.echo(json.dumps(jsonable(data), indent=2, sort_keys=True))
        else:
            human()


@asynccontextmanager
async def opened_store(settings: Settings) -> AsyncIterator[BlobStore]:
    """The server's blob store, for a command that deletes stored objects."""
    from dockyard.storage.factory import open_blob_store

    store = open_blob_store(settings.effective_storage_url, fsync=settings.fsync)
    try:
        yield store
    finally:
        await store.close()


def describe_error(exc: DomainError) -> str:
    if exc.detail in (None, {}, []):
        return exc.message
    return f"{exc.message} ({json.dumps(jsonable(exc.detail), separators=(', ', ': '))})"


def operator_command(group: click.Group, name: str | None = None, **attrs: Any) -> Callable[[F], click.Command]:
    """Register ``function(op: Operator, **arguments)`` on ``group`` with the shared options."""

    def decorate(function: F) -> click.Command:
        @functools.wraps(function)
        def command(config: Path | None, data_dir: Path | None, as_json: bool, **kwargs: Any) -> None:
            try:
                settings = load_settings(config, data_dir=data_dir)
            except SettingsError as exc:
                raise click.ClickException(str(exc)) from exc
            configure_logging("warning")
            function(Operator(settings, as_json), **kwargs)

        command = click.option("--json", "as_json", is_flag=True, help="Print JSON (for scripts).")(command)
        command = click.option(
            "--data-dir", type=click.Path(path_type=Path), default=None, help="The server's data directory."
        )(command)
        command = click.option(
            "--config",
            "config",
            type=click.Path(path_type=Path, dir_okay=False),
            default=None,
            help="A TOML settings file.",
        )(command)
        return group.command(name, **attrs)(command)

    return decorate


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


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Enum):
        return value.name.lower()
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, list | tuple):
        return ", ".join(cell(item) for item in value) or "-"
    return str(value)


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(cell(value) for value in row))
    Console(soft_wrap=False).print(table)


def print_fields(title: str, fields: Iterable[tuple[str, Any]]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in fields:
        table.add_row(name, cell(value))
    Console(soft_wrap=False).print(table)


def show_secret(what: str, secret: str) -> None:
    """Secrets are printed plainly (never wrapped or truncated) and once."""
    click.echo(f"{what} (shown once; store it now): {secret}")


async def every_page(fetch: Callable[[PageRequest], Awaitable[Page[T]]]) -> list[T]:
    """All items of a paginated listing."""
    items: list[T] = []
    number = 1
    while True:
        page = await fetch(PageRequest(page=number, page_size=100))
        items.extend(page.items)
        if not page.has_next:
            return items
        number += 1


def read_password(from_stdin: bool) -> str | None:
    """The password piped on standard input (its line ending removed), or None when not ``from_stdin``."""
    if not from_stdin:
        return None
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise click.ClickException("no password on standard input")
    return password


def parse_scope(target: str) -> tuple[str, str | None]:
    """``NS`` → (namespace, None): every repository of the namespace; ``NS/REPO`` → (namespace, the repository's
    registry name), where ``library/alpine`` is ``alpine`` as in the Hub API."""
    namespace, sep, name = target.strip().partition("/")
    if not namespace or (sep and not name):
        raise click.BadParameter(f"{target!r}: expected NAMESPACE or NAMESPACE/REPOSITORY", param_hint="TARGET")
    return namespace, full_name(namespace, name) if sep else None
