"""``dockyard repo list|delete``, ``tag list|delete``, ``audit`` and ``whoami``: the Hub's views of repositories,
tags and the audit log, from the command line, through the same services as the Hub API (so the same events,
audit entries and rules), acting as the site operator."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from dockyard.cli.access import repo as repo
from dockyard.cli.common import (
    Group,
    Operator,
    every_page,
    opened_store,
    operator_command,
    print_table,
    where,
)
from dockyard.core.paging import PageRequest
from dockyard.db.engine import Database
from dockyard.registry.context import RegistryContext
from dockyard.repos.audit import AuditLogEntry, AuditLogService
from dockyard.repos.repositories import RepositoryService
from dockyard.repos.snapshots import RepositorySummary
from dockyard.repos.tags import TagService, TagView

T = TypeVar("T")


def split_repository(target: str, param: str = "REPOSITORY") -> tuple[str, str]:
    """``NS/REPO`` → (namespace, the Hub's repository name: the rest of the path)."""
    namespace, sep, name = target.strip().partition("/")
    if not namespace or not sep or not name:
        raise click.BadParameter(f"{target!r}: expected NAMESPACE/REPOSITORY", param_hint=param)
    return namespace, name


def with_context(op: Operator, work: Callable[[RegistryContext], Awaitable[T]]) -> T:
    """Run ``work`` with the registry context of the server's database and blob store."""

    async def run(db: Database) -> T:
        async with opened_store(op.settings) as store:
            return await work(RegistryContext(db=db, store=store, settings=op.settings))

    return op.run(run)


@operator_command(repo, "list")
@click.argument("namespace")
def repo_list(op: Operator, namespace: str) -> None:
    """A namespace's repositories (private ones included)."""

    async def work(ctx: RegistryContext) -> list[RepositorySummary]:
        service = RepositoryService(ctx)
        return await every_page(lambda page: service.list_namespace(op.actor, namespace, page))

    found = with_context(op, work)
    op.emit(
        found,
        lambda: print_table(
            f"Repositories of {namespace}",
            ["name", "private", "pulls", "stars", "last updated"],
            [(r.full_name, r.is_private, r.pull_count, r.star_count, r.last_updated) for r in found],
        ),
    )


@operator_command(repo, "delete")
@click.argument("repository", metavar="NS/REPO")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed when not on a terminal).")
def repo_delete(op: Operator, repository: str, yes: bool) -> None:
    """Delete a repository: its tags, manifests and upload sessions (blobs no other repository uses are freed by
    the next garbage collection)."""
    namespace, name = split_repository(repository)
    if not yes and not click.confirm(f"Delete {repository} and all its tags?", default=False):
        raise click.ClickException("not deleted (confirm, or pass --yes)")

    async def work(ctx: RegistryContext) -> None:
        await RepositoryService(ctx).delete(op.actor, namespace, name)

    with_context(op, work)
    op.emit({"repository": repository, "deleted": True}, lambda: click.echo(f"deleted {repository}"))


@click.group(cls=Group)
def tag() -> None:
    """A repository's tags."""


@operator_command(tag, "list")
@click.argument("repository", metavar="NS/REPO")
def tag_list(op: Operator, repository: str) -> None:
    """A repository's tags, newest first."""
    namespace, name = split_repository(repository)

    async def work(ctx: RegistryContext) -> list[TagView]:
        service = TagService(ctx)
        return await every_page(lambda page: service.list_tags(op.actor, namespace, name, page))

    found = with_context(op, work)
    op.emit(
        found,
        lambda: print_table(
            f"Tags of {repository}",
            ["tag", "size", "last updated", "by", "last pulled"],
            [(t.name, t.full_size, t.last_updated, t.last_updater_username, t.tag_last_pulled) for t in found],
        ),
    )


@operator_command(tag, "delete")
@click.argument("reference", metavar="NS/REPO:TAG")
def tag_delete(op: Operator, reference: str) -> None:
    """Untag: the manifest stays (as after ``DELETE /v2/<name>/manifests/<tag>``) until garbage collection."""
    repository, sep, name = reference.rpartition(":")
    if not sep or "/" in name:
        raise click.BadParameter(f"{reference!r}: expected NAMESPACE/REPOSITORY:TAG", param_hint="REFERENCE")
    namespace, short = split_repository(repository, "REFERENCE")

    async def work(ctx: RegistryContext) -> None:
        await TagService(ctx).delete_tag(op.actor, namespace, short, name)

    with_context(op, work)
    op.emit({"repository": repository, "tag": name, "deleted": True}, lambda: click.echo(f"untagged {reference}"))


@operator_command(None, "audit")
@click.argument("namespace")
@click.option("--action", default=None, help="Only this action (e.g. repo.create, signing_key.rotate).")
@click.option("--target", default=None, help="Only entries about this name (a repository includes its tags).")
@click.option("--actor", "actor_name", default=None, help="Only entries by this account.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True, help="How many, newest first.")
def audit(
    op: Operator, namespace: str, action: str | None, target: str | None, actor_name: str | None, limit: int
) -> None:
    """A namespace's audit log, newest first."""

    async def work(ctx: RegistryContext) -> list[AuditLogEntry]:
        page = await AuditLogService(ctx).list(
            op.actor,
            namespace,
            action=action,
            name=target,
            actor_name=actor_name,
            page=PageRequest(page=1, page_size=min(limit, 100)),
        )
        entries = list(page.items)
        number = 1
        while page.has_next and len(entries) < limit:
            number += 1
            page = await AuditLogService(ctx).list(
                op.actor,
                namespace,
                action=action,
                name=target,
                actor_name=actor_name,
                page=PageRequest(page=number, page_size=100),
            )
            entries.extend(page.items)
        return entries[:limit]

    found = with_context(op, work)
    op.emit(
        found,
        lambda: print_table(
            f"Audit log of {namespace}",
            ["time", "action", "target", "actor", "from"],
            [(e.timestamp, e.action, e.name, e.actor, e.source_ip or None) for e in found],
        ),
    )


@operator_command(None, "whoami")
def whoami(op: Operator) -> None:
    """Who the administration commands act as, and on which data."""
    document = {
        "actor": "operator",
        "description": "the site operator: whoever may run dockyard with access to the server's data",
        "data_dir": str(op.settings.data_dir.resolve()),
        "where": where(op.settings),
    }
    op.emit(document, lambda: click.echo(f"the site operator (every right), working on the {where(op.settings)}"))
