"""``dockyard quota show|set|recount`` (namespace quotas) and ``dockyard retention show|set|run|history``
(retention policies and their runs), run by the server's operator against the server's DB over
``dockyard.repos.quotas`` and ``dockyard.repos.retention`` (``docs/lifecycle.md``)."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from dockyard.cli.common import Operator, jsonable, opened_store, operator_command, print_fields, print_table
from dockyard.cli.progress import phase_progress
from dockyard.db.engine import Database
from dockyard.registry.context import RegistryContext
from dockyard.registry.quotas import Usage
from dockyard.repos.quotas import UNSET, QuotaService
from dockyard.repos.retention import PolicyView, RetentionService, RunView
from dockyard.repos.retention_rules import TEMPLATES

_UNITS = {"": 1, "b": 1, "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3}
_UNITS |= {"t": 1000**4, "tb": 1000**4, "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str) -> int | None:
    """``10GiB``, ``500MB``, ``1234`` → bytes; ``unlimited`` or ``-1`` → None."""
    if text.strip().lower() in ("unlimited", "-1", "none"):
        return None
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise click.BadParameter(f"{text!r}: a size such as 500MB, 10GiB or 1234 (bytes), or unlimited")
    return int(float(match.group(1)) * _UNITS[unit])


def _count(text: str) -> int | None:
    if text.strip().lower() in ("unlimited", "-1", "none"):
        return None
    if not text.strip().isdigit():
        raise click.BadParameter(f"{text!r}: a number of repositories, or unlimited")
    return int(text)


def _target(target: str) -> tuple[str, str | None]:
    namespace, sep, repo = target.strip().partition("/")
    if not namespace or (sep and not repo):
        raise click.BadParameter(f"{target!r}: expected NAMESPACE or NAMESPACE/REPOSITORY", param_hint="TARGET")
    return namespace, repo or None


def _limit(value: int | None) -> str:
    return "unlimited" if value is None else str(value)


def _show_usage(op: Operator, usages: list[Usage]) -> None:
    if op.as_json:
        click.echo(json.dumps([u.as_dict() for u in usages] if len(usages) != 1 else usages[0].as_dict()))
        return
    print_table(
        "namespace quotas",
        ["namespace", "storage used", "storage limit", "repositories", "repository limit", "soft %"],
        [
            [
                u.namespace,
                u.storage_bytes,
                _limit(u.storage_limit),
                u.repository_count,
                _limit(u.repository_limit),
                u.soft_percent,
            ]
            for u in usages
        ],
    )


@click.group()
def quota() -> None:
    """Namespace quotas: storage (distinct blobs) and repository count."""


@operator_command(quota, "show")
@click.argument("namespace", required=False)
def show(op: Operator, namespace: str | None) -> None:
    """NAMESPACE's usage and limits, or every namespace's."""

    async def work(db: Database) -> list[Usage]:
        service = QuotaService(db)
        if namespace is None:
            return await service.list_all(op.actor)
        return [await service.show(op.actor, namespace)]

    _show_usage(op, op.run(work))


@operator_command(quota, "set")
@click.argument("namespace")
@click.option("--storage", default=None, help="Hard storage limit: 500MB, 10GiB, bytes, or unlimited.")
@click.option("--repositories", default=None, help="Hard limit on the number of repositories, or unlimited.")
@click.option("--soft-percent", type=click.IntRange(1, 100), default=None, help="Warning threshold (default 80).")
def set_(op: Operator, namespace: str, storage: str | None, repositories: str | None, soft_percent: int | None) -> None:
    """Set NAMESPACE's limits (options left out stay as they are)."""
    storage_limit = UNSET if storage is None else parse_size(storage)
    repository_limit = UNSET if repositories is None else _count(repositories)

    async def work(db: Database) -> Usage:
        return await QuotaService(db).set(
            op.actor,
            namespace,
            storage_limit=storage_limit,
            repository_limit=repository_limit,
            soft_percent=soft_percent,
        )

    _show_usage(op, [op.run(work)])


@operator_command(quota, "recount")
@click.argument("namespace", required=False)
def recount(op: Operator, namespace: str | None) -> None:
    """Recompute usage from the stored links (NAMESPACE, or every namespace); on a terminal a progress display
    runs meanwhile."""

    async def work(db: Database) -> int:
        with phase_progress("recounting namespace usage", unit="namespaces", quiet=op.as_json) as tell:
            if tell is not None:
                tell("counting every repository's blob links")
            return await QuotaService(db).recount(namespace)

    counted = op.run(work)
    click.echo(json.dumps({"namespaces": counted}) if op.as_json else f"recounted {counted} namespace(s)")


@click.group()
def retention() -> None:
    """Retention policies (per namespace or repository) and their runs."""


async def _with_service(op: Operator, db: Database, use: Any) -> Any:
    async with opened_store(op.settings) as store:
        return await use(RetentionService(RegistryContext(db=db, store=store, settings=op.settings)))


def _show_policy(op: Operator, view: PolicyView) -> None:
    if op.as_json:
        click.echo(json.dumps({**jsonable(view), "rules": [r.as_dict() for r in view.rules]}))
        return
    rules = "; ".join(f"{r.pattern} {r.template} {r.value}" for r in view.rules) or "(none: keep every tag)"
    print_fields(
        "retention policy",
        [
            ("namespace", view.namespace),
            ("repository", view.repository or "(every repository of the namespace)"),
            ("rules", rules),
            ("keep signed", view.keep_signed),
            ("untagged days", "off" if view.untagged_days is None else view.untagged_days),
            ("scheduled", view.scheduled),
            ("inherited", view.inherited),
        ],
    )


def _parse_rule(text: str) -> dict[str, Any]:
    pattern, _, rest = text.rpartition(":")
    template, _, value = rest.partition("=")
    if not pattern or template not in TEMPLATES or (value and not value.isdigit()):
        raise click.BadParameter(
            f"{text!r}: PATTERN:TEMPLATE[=VALUE], TEMPLATE one of {', '.join(TEMPLATES)}", param_hint="--rule"
        )
    return {"pattern": pattern, "template": template, "value": int(value or 0)}


@operator_command(retention, "show")
@click.argument("target")
def show_policy(op: Operator, target: str) -> None:
    """TARGET (NAMESPACE or NAMESPACE/REPOSITORY)'s policy; a repository shows the one that applies to it."""
    namespace, repo = _target(target)
    _show_policy(op, op.run(lambda db: _with_service(op, db, lambda s: s.get_policy(op.actor, namespace, repo))))


@operator_command(retention, "set")
@click.argument("target")
@click.option("--rule", "rules", multiple=True, help="PATTERN:TEMPLATE[=VALUE], e.g. 'v*:latestPushedK=10'.")
@click.option("--keep-signed/--no-keep-signed", default=False, help="Never delete tags of signed images.")
@click.option("--untagged-days", type=click.IntRange(0, 36_500), default=None, help="Delete older untagged manifests.")
@click.option("--scheduled/--on-demand", default=True, help="Run on the retention schedule (default) or on demand.")
def set_policy(
    op: Operator, target: str, rules: tuple[str, ...], keep_signed: bool, untagged_days: int | None, scheduled: bool
) -> None:
    """Replace TARGET's policy. A tag no rule keeps is deleted by a run; with no rules every tag is kept."""
    namespace, repo = _target(target)
    parsed = [_parse_rule(rule) for rule in rules]

    async def use(service: RetentionService) -> PolicyView:
        return await service.set_policy(
            op.actor,
            namespace,
            repo,
            rules=parsed,
            keep_signed=keep_signed,
            untagged_days=untagged_days,
            scheduled=scheduled,
        )

    _show_policy(op, op.run(lambda db: _with_service(op, db, use)))


def _show_run(op: Operator, view: RunView) -> None:
    if op.as_json:
        click.echo(json.dumps(jsonable(view)))
        return
    verb = "would delete" if view.dry_run else "deleted"
    for tag in view.tags:
        click.echo(f"{verb} tag {view.repository}:{tag['tag']} ({tag['digest']})")
    for digest in view.manifests:
        click.echo(f"{verb} manifest {view.repository}@{digest}")
    click.echo(
        f"{verb} {view.tags_deleted} tag(s), {view.manifests_deleted} untagged manifest(s); "
        f"{view.bytes_freed} bytes for garbage collection to free"
    )


@operator_command(retention, "run")
@click.argument("target")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def run(op: Operator, target: str, dry_run: bool) -> None:
    """Apply the policy of TARGET (NAMESPACE/REPOSITORY) now."""
    namespace, repo = _target(target)
    if repo is None:
        raise click.BadParameter("runs are per repository: NAMESPACE/REPOSITORY", param_hint="TARGET")
    _show_run(op, op.run(lambda db: _with_service(op, db, lambda s: s.run(op.actor, namespace, repo, dry_run=dry_run))))


@operator_command(retention, "history")
@click.argument("target")
def history(op: Operator, target: str) -> None:
    """TARGET (NAMESPACE/REPOSITORY)'s runs, newest first."""
    namespace, repo = _target(target)
    if repo is None:
        raise click.BadParameter("runs are per repository: NAMESPACE/REPOSITORY", param_hint="TARGET")
    runs: list[RunView] = op.run(lambda db: _with_service(op, db, lambda s: s.history(op.actor, namespace, repo)))
    if op.as_json:
        click.echo(json.dumps(jsonable(runs)))
        return
    print_table(
        f"retention runs of {target}",
        ["id", "started", "trigger", "dry run", "tags", "manifests", "bytes freed"],
        [[r.id, r.started_at, r.trigger, r.dry_run, r.tags_deleted, r.manifests_deleted, r.bytes_freed] for r in runs],
    )
