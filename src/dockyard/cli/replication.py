"""``dockyard replication add|list|run|history|rm``: a namespace's replication rules to and from other registries
(``dockyard.replication.rules``), as the operator. The remote's password is read from standard input
(``--password-stdin``), never from the command line, and stored sealed with the server secret. ``run`` queues a
run; the server's (or a worker's) job runner carries it out."""

from __future__ import annotations

import click

from dockyard.auth.secrets import SecretBox
from dockyard.cli.common import Operator, operator_command, print_fields, print_table, read_password
from dockyard.db.engine import Database
from dockyard.replication.rules import ReplicationService, RuleInput, RuleView, RunView


def _service(op: Operator, db: Database) -> ReplicationService:
    from dockyard.app import resolve_secret_key

    settings = resolve_secret_key(op.settings)
    return ReplicationService(db, SecretBox(settings.secret_key), settings, lambda: None)


@click.group()
def replication() -> None:
    """Replication rules: copy a namespace's images to another registry (push) or another registry's into a
    namespace (pull)."""


@operator_command(replication, "add")
@click.argument("namespace", metavar="NS")
@click.argument("name", metavar="RULE")
@click.argument("remote_url", metavar="REMOTE_URL")
@click.option("--pull", "direction", flag_value="pull", help="Copy from the remote into NS.")
@click.option("--push", "direction", flag_value="push", default=True, help="Copy from NS to the remote (default).")
@click.option("--remote-namespace", default="", help="The remote's namespace for NS (default: the same name).")
@click.option("--repositories", "repository_filter", default="*", show_default=True, help="Glob on the path in NS.")
@click.option("--tags", "tag_filter", default="*", show_default=True, help="Glob on the tag.")
@click.option("--deletes/--no-deletes", default=False, help="Replicate tag deletions.")
@click.option(
    "--trigger",
    type=click.Choice(["manual", "event", "schedule"]),
    default="manual",
    show_default=True,
    help="event: on pushes and tag deletions (push rules); schedule: every --every seconds.",
)
@click.option("--every", "schedule_seconds", type=click.IntRange(60, 366 * 86400), default=None, help="Seconds.")
@click.option("--bandwidth", "bandwidth_limit_kib", type=click.IntRange(min=1), default=None, help="KiB/s.")
@click.option("--username", default=None, help="Remote account (its password or token on standard input).")
@click.option("--password-stdin", is_flag=True, help="Read the remote password or token from standard input.")
@click.option("--disabled", is_flag=True, help="Add the rule disabled (it runs only when asked).")
def replication_add(
    op: Operator,
    namespace: str,
    name: str,
    remote_url: str,
    direction: str,
    remote_namespace: str,
    repository_filter: str,
    tag_filter: str,
    deletes: bool,
    trigger: str,
    schedule_seconds: int | None,
    bandwidth_limit_kib: int | None,
    username: str | None,
    password_stdin: bool,
    disabled: bool,
) -> None:
    """Add replication rule RULE to NS, with the registry at REMOTE_URL."""
    password = read_password(password_stdin)
    if username is not None and password is None:
        raise click.UsageError("--username needs --password-stdin")
    spec = RuleInput(
        name=name,
        direction=direction,
        remote_url=remote_url,
        remote_namespace=remote_namespace,
        username=username,
        password=password,
        repository_filter=repository_filter,
        tag_filter=tag_filter,
        replicate_deletes=deletes,
        trigger=trigger,
        schedule_seconds=schedule_seconds,
        bandwidth_limit_kib=bandwidth_limit_kib,
        enabled=not disabled,
    )

    async def work(db: Database) -> RuleView:
        return await _service(op, db).add(op.actor, namespace, spec)

    view = op.run(work)
    op.emit(view, lambda: _print_rule(view))


def _print_rule(view: RuleView) -> None:
    print_fields(
        f"replication rule {view.namespace}/{view.name}",
        [
            ("direction", view.direction),
            ("remote", view.remote_url),
            ("remote namespace", view.remote_namespace or view.namespace),
            ("repositories", view.repository_filter),
            ("tags", view.tag_filter),
            ("deletes", view.replicate_deletes),
            ("trigger", view.trigger),
            ("every (s)", view.schedule_seconds),
            ("bandwidth (KiB/s)", view.bandwidth_limit_kib),
            ("username", view.username),
            ("password", "set" if view.has_password else None),
            ("enabled", view.enabled),
        ],
    )


@operator_command(replication, "list")
@click.argument("namespace", metavar="NS")
def replication_list(op: Operator, namespace: str) -> None:
    """List the replication rules of NS."""

    async def work(db: Database) -> list[RuleView]:
        return await _service(op, db).list(op.actor, namespace)

    views = op.run(work)
    op.emit(
        views,
        lambda: print_table(
            f"replication rules of {namespace}",
            ["rule", "direction", "remote", "repositories", "tags", "trigger", "enabled"],
            [
                (v.name, v.direction, v.remote_url, v.repository_filter, v.tag_filter, v.trigger, v.enabled)
                for v in views
            ],
        ),
    )


@operator_command(replication, "run")
@click.argument("namespace", metavar="NS")
@click.argument("name", metavar="RULE")
def replication_run(op: Operator, namespace: str, name: str) -> None:
    """Queue a run of RULE now (the server's job runner carries it out; see ``history``)."""

    async def work(db: Database) -> RunView:
        return await _service(op, db).run(op.actor, namespace, name)

    view = op.run(work)
    op.emit(view, lambda: click.echo(f"run {view.id} of {namespace}/{name} queued"))


@operator_command(replication, "history")
@click.argument("namespace", metavar="NS")
@click.argument("name", metavar="RULE")
@click.option("--run", "run_id", type=int, default=None, help="One run with the result of every artifact.")
@click.option(
    "--limit",
    type=click.IntRange(1, 500),
    default=20,
    show_default=True,
    help="Show at most this many runs, newest first.",
)
def replication_history(op: Operator, namespace: str, name: str, run_id: int | None, limit: int) -> None:
    """The runs of RULE, newest first, or (``--run``) one run's per-artifact results."""
    if run_id is not None:

        async def one(db: Database) -> RunView:
            return await _service(op, db).run_detail(op.actor, namespace, run_id)

        detail = op.run(one)
        op.emit(
            detail,
            lambda: print_table(
                f"run {detail.id} of {namespace}/{name}: {detail.state}",
                ["attempt", "source", "destination", "result", "reason"],
                [(r.attempt, r.source, r.destination, r.result, r.reason) for r in detail.results],
            ),
        )
        return

    async def work(db: Database) -> list[RunView]:
        return await _service(op, db).runs(op.actor, namespace, name, limit)

    views = op.run(work)
    op.emit(
        views,
        lambda: print_table(
            f"runs of {namespace}/{name}",
            ["run", "trigger", "state", "attempts", "copied", "skipped", "deleted", "failed", "created"],
            [
                (v.id, v.trigger, v.state, v.attempts, v.copied, v.skipped, v.deleted, v.failed, v.created_at)
                for v in views
            ],
        ),
    )


@operator_command(replication, "rm")
@click.argument("namespace", metavar="NS")
@click.argument("name", metavar="RULE")
def replication_rm(op: Operator, namespace: str, name: str) -> None:
    """Remove RULE of NS and its runs' history."""

    async def work(db: Database) -> None:
        await _service(op, db).remove(op.actor, namespace, name)

    op.run(work)
    op.emit({"removed": name}, lambda: click.echo(f"replication rule {namespace}/{name} removed"))
