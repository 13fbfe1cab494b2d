"""``dockyard build link|unlink|rule add|rule list|rule rm|run|list|logs`` (the operator's side of automated builds,
over ``dockyard.builds``) and ``dockyard builder`` (a process that runs only build jobs, on any machine that reaches
the database and this Dockyard's ``/v2``).

Builds queued here are run by a server's or a builder's job runner. The link's webhook secret and trigger URL are
printed once, when it is made.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from pathlib import Path

import click

from dockyard.auth.secrets import SecretBox
from dockyard.builds.manage import BuildSettingsService, LinkSecrets, LinkView, RuleView
from dockyard.builds.records import BuildView, Queued
from dockyard.builds.service import BuildService
from dockyard.cli.common import (
    Operator,
    every_page,
    opened_store,
    operator_command,
    print_fields,
    print_table,
    show_secret,
)
from dockyard.cli.ids import unique_start
from dockyard.db.engine import Database
from dockyard.settings import Settings, SettingsError, load_settings

log = logging.getLogger("dockyard.builder")


def _box(op: Operator) -> SecretBox:
    from dockyard.app import resolve_secret_key

    return SecretBox(resolve_secret_key(op.settings).secret_key)


def _split(target: str) -> tuple[str, str]:
    namespace, _, name = target.partition("/")
    if not namespace or not name:
        raise click.BadParameter("expected NS/REPO", param_hint="NS/REPO")
    return namespace, name


def _print_link(link: LinkView) -> None:
    print_fields(
        f"build link of {link.repository}",
        [
            ("url", link.url),
            ("auth", link.auth),
            ("https user", link.https_username),
            ("https token", "set" if link.has_https_token else None),
            ("deploy key", link.ssh_public_key),
            ("poll every (s)", link.poll_interval_seconds or None),
            ("created", link.created_at),
        ],
    )


def _print_rules(rules: list[RuleView]) -> None:
    print_table(
        "build rules",
        ["id", "type", "source", "tag", "dockerfile", "context", "autobuild", "cache", "latest"],
        [
            (
                r.id,
                r.source_type,
                r.source_name,
                r.tag,
                r.dockerfile,
                r.build_context,
                r.autobuild,
                r.build_cache,
                r.also_latest,
            )
            for r in rules
        ],
    )


@click.group()
def build() -> None:
    """Automated builds: link a git repository, build rules, build now, history and logs."""


@operator_command(build, "link")
@click.argument("target", metavar="NS/REPO")
@click.argument("url", metavar="GIT_URL")
@click.option("--https-username", default=None, help="User name for the HTTPS token (default x-access-token).")
@click.option(
    "--https-token", default=None, envvar="DOCKYARD_BUILD_HTTPS_TOKEN", help="Or $DOCKYARD_BUILD_HTTPS_TOKEN."
)
@click.option(
    "--ssh-known-hosts",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="A known_hosts file pinning the SSH remote's host key (default: accept the first key seen).",
)
@click.option("--poll", "poll_seconds", type=int, default=0, help="Poll the remote every N seconds (0: never).")
def build_link(
    op: Operator,
    target: str,
    url: str,
    https_username: str | None,
    https_token: str | None,
    ssh_known_hosts: Path | None,
    poll_seconds: int,
) -> None:
    """Link NS/REPO to a git repository (re-linking keeps the rules). SSH URLs get a new deploy key."""
    namespace, name = _split(target)
    known = ssh_known_hosts.read_text() if ssh_known_hosts else None

    async def work(db: Database) -> tuple[LinkView, LinkSecrets]:
        return await BuildSettingsService(db, _box(op)).link(
            op.actor,
            namespace,
            name,
            url=url,
            https_username=https_username,
            https_token=https_token,
            ssh_known_hosts=known,
            poll_interval_seconds=poll_seconds,
        )

    link, secrets = op.run(work)
    base = (op.settings.base_url or f"http://{op.settings.host}:{op.settings.port}").rstrip("/")
    hook = f"{base}/api/v2/repositories/{namespace}/{name}/build-link/webhook"
    trigger = f"{base}/api/v2/repositories/{namespace}/{name}/trigger/{secrets.trigger_token}/call/"

    def human() -> None:
        _print_link(link)
        click.echo(f"push webhook URL: {hook}")
        show_secret("webhook secret", secrets.webhook_secret)
        show_secret("trigger URL", trigger)
        if link.ssh_public_key:
            click.echo(f"install this deploy key (read-only) on the git host:\n{link.ssh_public_key}")

    op.emit(
        {"link": link, "webhook_url": hook, "webhook_secret": secrets.webhook_secret, "trigger_url": trigger}, human
    )


@operator_command(build, "unlink")
@click.argument("target", metavar="NS/REPO")
def build_unlink(op: Operator, target: str) -> None:
    """Remove NS/REPO's link and rules (the history stays)."""
    namespace, name = _split(target)
    op.run(lambda db: BuildSettingsService(db, _box(op)).unlink(op.actor, namespace, name))
    op.emit({"unlinked": f"{namespace}/{name}"}, lambda: click.echo(f"unlinked {namespace}/{name}"))


@build.group("rule")
def rule() -> None:
    """Build rules (Docker Hub's: branch or tag, name or /regex/, tag template with {sourceref} and {\\1}…)."""


@operator_command(rule, "add")
@click.argument("target", metavar="NS/REPO")
@click.option(
    "--type",
    "source_type",
    type=click.Choice(["Branch", "Tag"]),
    default="Branch",
    show_default=True,
    help="Build branches or tags.",
)
@click.option("--source", "source_name", default="main", show_default=True, help="A name, or /regex/.")
@click.option("--tag", default="latest", show_default=True, help="Template: {sourceref}, {\\1}…{\\9}.")
@click.option("--dockerfile", default="Dockerfile", show_default=True, help="Path of the Dockerfile in the context.")
@click.option("--context", "build_context", default="/", show_default=True, help="Build context in the repository.")
@click.option("--build-arg", "build_args", multiple=True, metavar="NAME=VALUE", help="A build argument (repeatable).")
@click.option("--secret-build-arg", "secret_args", multiple=True, metavar="NAME=VALUE", help="Sealed, never shown.")
@click.option("--no-autobuild", is_flag=True, help="Build only when asked (not on pushes).")
@click.option("--no-cache", is_flag=True, help="Build without the repository's layer cache.")
@click.option("--also-latest", is_flag=True, help="Also tag latest.")
@click.option("--network", is_flag=True, help="Let RUN steps reach the network.")
def rule_add(
    op: Operator,
    target: str,
    source_type: str,
    source_name: str,
    tag: str,
    dockerfile: str,
    build_context: str,
    build_args: tuple[str, ...],
    secret_args: tuple[str, ...],
    no_autobuild: bool,
    no_cache: bool,
    also_latest: bool,
    network: bool,
) -> None:
    """Add a build rule to NS/REPO."""
    namespace, name = _split(target)
    args = []
    for raw, secret in [*((a, False) for a in build_args), *((a, True) for a in secret_args)]:
        arg_name, sep, value = raw.partition("=")
        if not sep:
            raise click.BadParameter(f"{raw!r}: expected NAME=VALUE")
        args.append({"name": arg_name, "value": value, "secret": secret})

    async def work(db: Database) -> RuleView:
        return await BuildSettingsService(db, _box(op)).add_rule(
            op.actor,
            namespace,
            name,
            source_type=source_type,
            source_name=source_name,
            tag=tag,
            dockerfile=dockerfile,
            build_context=build_context,
            build_args=args,
            autobuild=not no_autobuild,
            build_cache=not no_cache,
            also_latest=also_latest,
            network=network,
        )

    made = op.run(work)
    op.emit(made, lambda: _print_rules([made]))


@operator_command(rule, "list")
@click.argument("target", metavar="NS/REPO")
def rule_list(op: Operator, target: str) -> None:
    """The build rules of NS/REPO, oldest first."""
    namespace, name = _split(target)
    rules = op.run(lambda db: BuildSettingsService(db, _box(op)).list_rules(op.actor, namespace, name))
    op.emit(rules, lambda: _print_rules(rules))


@operator_command(rule, "rm")
@click.argument("target", metavar="NS/REPO")
@click.argument("rule_id", metavar="RULE_ID")
def rule_rm(op: Operator, target: str, rule_id: str) -> None:
    """Remove a build rule (RULE_ID: its id, or a unique start of it)."""
    namespace, name = _split(target)

    async def work(db: Database) -> str:
        service = BuildSettingsService(db, _box(op))
        full = await _rule_id(service, op, namespace, name, rule_id)
        await service.delete_rule(op.actor, namespace, name, full)
        return full

    removed = op.run(work)
    op.emit({"removed": removed}, lambda: click.echo(f"removed rule {removed}"))


async def _rule_id(service: BuildSettingsService, op: Operator, namespace: str, name: str, given: str) -> str:
    rules = await service.list_rules(op.actor, namespace, name)
    return unique_start("build_rule", given, [r.id for r in rules])


@operator_command(build, "run")
@click.argument("target", metavar="NS/REPO")
@click.option(
    "--ref", default=None, help="The branch (or with --tag-ref, tag) to build; default every ref rules match."
)
@click.option("--tag-ref", is_flag=True, help="--ref names a tag, not a branch.")
@click.option("--rule", "rule_id", default=None, help="Only this rule.")
def build_run(op: Operator, target: str, ref: str | None, tag_ref: bool, rule_id: str | None) -> None:
    """Build now. The server's (or a builder's) job runner runs the build."""
    namespace, name = _split(target)

    async def work(db: Database) -> list[Queued]:
        rule = (
            None
            if rule_id is None
            else await _rule_id(BuildSettingsService(db, _box(op)), op, namespace, name, rule_id)
        )
        return await BuildService(db, _box(op)).run(
            op.actor, namespace, name, source_type="Tag" if tag_ref else "Branch", source_name=ref, rule=rule
        )

    queued = op.run(work)
    ids = [q.build for q in queued]
    op.emit(
        {"builds": ids},
        lambda: click.echo("\n".join(ids) if ids else "listing the remote's refs; builds follow in the history"),
    )


@operator_command(build, "list")
@click.argument("target", metavar="NS/REPO")
def build_list(op: Operator, target: str) -> None:
    """The build history of NS/REPO, newest first."""
    namespace, name = _split(target)

    async def work(db: Database) -> list[BuildView]:
        service = BuildService(db, _box(op))
        return await every_page(lambda page: service.list(op.actor, namespace, name, page))

    builds = op.run(work)
    op.emit(
        builds,
        lambda: print_table(
            f"builds of {namespace}/{name}",
            ["id", "state", "ref", "commit", "tags", "trigger", "created", "error"],
            [
                (b.id, b.state, b.ref, (b.commit or "")[:12], list(b.tags), b.trigger, b.created_at, b.error)
                for b in builds
            ],
        ),
    )


@operator_command(build, "logs")
@click.argument("build_id", metavar="ID")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines until the build ends.")
def build_logs(op: Operator, build_id: str, follow: bool) -> None:
    """Print a build's log."""
    from dockyard.builds.logs import read_log
    from dockyard.registry.blobs import BlobService
    from dockyard.registry.context import RegistryContext

    async def work(db: Database) -> str:
        service = BuildService(db, _box(op))
        full = await service.resolve_id(build_id)
        namespace, name = await service.locate(full)
        row_id, _ = await service.get(op.actor, namespace, name, full)
        async with opened_store(op.settings) as store:
            blobs = BlobService(RegistryContext(db=db, store=store, settings=op.settings))
            async for line in read_log(db, blobs, row_id, follow=follow):
                click.echo(line)
        _, view = await service.get(op.actor, namespace, name, full)
        return view.state

    state = op.run(work)
    if follow:
        click.echo(f"-- build {state}", err=True)


@click.command()
@click.option(
    "--config", "config", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Settings file (TOML)."
)
@click.option("--data-dir", type=click.Path(path_type=Path), default=None, help="Data directory (default ./data).")
@click.option("--concurrency", type=int, default=None, help="Builds running at once here (default: jobs_concurrency).")
@click.option("--grace", type=float, default=30.0, show_default=True, help="Seconds running builds get on SIGTERM.")
def builder(config: Path | None, data_dir: Path | None, concurrency: int | None, grace: float) -> None:
    """Run automated builds only (the builds.run jobs), until SIGTERM or SIGINT. Needs the database and this
    Dockyard's /v2 (build_registry_url); never blob storage."""
    from dockyard.app import resolve_secret_key
    from dockyard.logs import configure_logging
    from dockyard.migrations.runner import upgrade_sync

    try:
        settings = resolve_secret_key(load_settings(config, data_dir=data_dir, jobs_concurrency=concurrency))
    except (SettingsError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level)
    upgrade_sync(settings.effective_database_url)
    asyncio.run(run_builder(settings, grace=grace))


async def run_builder(settings: Settings, *, grace: float = 30.0) -> None:
    from dockyard.builds.tasks import BUILDER_KINDS
    from dockyard.jobs.registry import running_jobs

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    db = Database(settings.effective_database_url, pool_size=settings.db_pool_size)
    try:
        # builds.run never touches the store (the executor pushes over /v2); the job environment just carries one.
        # A builder without storage settings gets the default, a directory under its own data directory.
        async with (
            opened_store(settings) as store,
            running_jobs(db, store, settings, stop_grace=grace, kinds=BUILDER_KINDS) as runner,
        ):
            log.info(
                "builder %s running %s (concurrency %d)",
                runner.owner,
                ", ".join(BUILDER_KINDS),
                settings.jobs_concurrency,
            )
            started = time.monotonic()
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({stopping, runner.task}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if runner.task.done():
                runner.task.result()
            log.info("builder %s stopping after %.0f s", runner.owner, time.monotonic() - started)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await db.close()
