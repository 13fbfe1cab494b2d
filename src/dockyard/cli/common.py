"""What the administration commands share: the ``--config``/``--data-dir``/``--json``/``--init`` options, finding
the server's database (never creating one by accident), running a service call against it as the server's
operator, and printing results as tables or JSON — errors included.

The commands act as the *open* principal: whoever can run ``dockyard`` on the server machine with access to its
data directory or database is the site operator. Domain errors become a one-line ``Error: …`` and exit status 1;
with ``--json`` every error (usage errors too) is ``{"error": {"code", "message", "detail"}}`` on standard output
and the same exit status.

A new command gets all of this from one decorator: ``@operator_command(group, "name")`` for a command that works
on the server's data (``function(op: Operator, **arguments)``), or ``@json_command(group, "name")`` plus
``@json_option`` for one that does not; groups are created with ``@click.group(cls=Group)`` so that their
commands render errors the same way.
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

from dockyard.auth.secrets import configure_password_hashing_from
from dockyard.authz.principal import OPEN, Principal
from dockyard.cli.output import Group as Group
from dockyard.cli.output import JsonCommand, init_option, json_option, settings_options
from dockyard.cli.output import describe_error as describe_error
from dockyard.cli.output import json_command as json_command
from dockyard.cli.output import jsonable as jsonable
from dockyard.core.paging import Page, PageRequest
from dockyard.db.engine import Database
from dockyard.logs import configure_logging
from dockyard.repos.access import full_name
from dockyard.settings import Settings, SettingsError, load_settings
from dockyard.storage.base import BlobStore

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def load_cli_settings(config: Path | None, data_dir: Path | None) -> Settings:
    try:
        settings = load_settings(config, data_dir=data_dir)
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_password_hashing_from(settings)
    return settings


def where(settings: Settings) -> str:
    """Which data the command uses, for people: the data directory, and a database URL when one is set (without
    its password)."""
    place = f"data directory {settings.data_dir.resolve()}"
    if settings.database_url:
        from sqlalchemy.engine import make_url

        place += f", database {make_url(settings.database_url).render_as_string(hide_password=True)}"
    return place


def require_database(settings: Settings, *, init: bool) -> None:
    """Refuse to create an embedded (SQLite) database where none exists, unless ``init``: run from the wrong folder,
    a command would otherwise answer from a new empty database. A configured ``database_url`` names its database
    explicitly; its schema is migrated as usual."""
    if settings.database_url or init:
        return
    path = settings.data_dir / "dockyard.db"
    if not path.exists():
        raise click.ClickException(
            f"no Dockyard database in {settings.data_dir.resolve()} (looked for {path.name}); pass the server's "
            "--data-dir or --config (or set DOCKYARD_DATA_DIR), or --init to create a new one there"
        )


def announce(settings: Settings, as_json: bool) -> None:
    """Say on standard error which data the command works on, when a person is watching (standard error is a
    terminal, no ``--json``): scripts keep their one-line errors and clean output."""
    if not as_json and sys.stderr.isatty():
        click.echo(f"dockyard: {where(settings)}", err=True)


@dataclasses.dataclass(frozen=True)
class Operator:
    """One administration command's context: the settings, the acting principal and the output format."""

    settings: Settings
    as_json: bool
    actor: Principal = OPEN
    init: bool = False

    def run(self, work: Callable[[Database], Awaitable[T]]) -> T:
        """Open the server's database (migrating it first), run ``work``, close it. Without ``init`` a missing
        embedded database is an error rather than a new empty one. A domain error ends the command with its
        message."""
        require_database(self.settings, init=self.init)
        announce(self.settings, self.as_json)

        async def main() -> T:
            from dockyard.migrations.runner import upgrade

            db = Database(self.settings.effective_database_url)
            try:
                await upgrade(db)
                return await work(db)
            finally:
                await db.close()

        return asyncio.run(main())

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


def operator_command(group: click.Group | None, name: str | None = None, **attrs: Any) -> Callable[[F], click.Command]:
    """Register ``function(op: Operator, **arguments)`` on ``group`` (None: a top-level command, listed in
    ``cli/main.py``) with the shared options (``--config``, ``--data-dir``, ``--json``, ``--init``) and JSON
    errors."""

    def decorate(function: F) -> click.Command:
        @functools.wraps(function)
        def command(config: Path | None, data_dir: Path | None, as_json: bool, init: bool, **kwargs: Any) -> None:
            settings = load_cli_settings(config, data_dir)
            configure_logging("warning")
            function(Operator(settings, as_json, init=init), **kwargs)

        command = init_option(json_option(settings_options(command)))
        if group is None:
            return click.command(name, cls=JsonCommand, **attrs)(command)
        return group.command(name, cls=JsonCommand, **attrs)(command)

    return decorate


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
