"""``dockyard proxy add|list|rm``: make an organization's namespace a pull-through cache of an upstream registry
(``dockyard.proxy.manage``). The upstream password is read from standard input (``--password-stdin``), never
from the command line, and stored sealed with the server secret."""

from __future__ import annotations

import click

from dockyard.auth.secrets import SecretBox
from dockyard.cli.common import Operator, operator_command, print_fields, print_table, read_password
from dockyard.db.engine import Database
from dockyard.proxy.manage import DEFAULT_TAG_TTL, ProxyService, ProxyView


def _service(op: Operator, db: Database) -> ProxyService:
    from dockyard.app import resolve_secret_key

    return ProxyService(db, SecretBox(resolve_secret_key(op.settings).secret_key))


@click.group()
def proxy() -> None:
    """Pull-through caches: namespaces that serve an upstream registry's repositories (Docker Hub, any OCI
    registry)."""


@operator_command(proxy, "add")
@click.argument("namespace", metavar="NS")
@click.argument("upstream_url", metavar="UPSTREAM_URL")
@click.option("--username", default=None, help="Upstream account (its password or token on standard input).")
@click.option("--password-stdin", is_flag=True, help="Read the upstream password or token from standard input.")
@click.option(
    "--tag-ttl",
    "tag_ttl",
    type=click.IntRange(0, 365 * 86400),
    default=DEFAULT_TAG_TTL,
    show_default=True,
    help="Seconds a cached tag is served before it is checked upstream again.",
)
def proxy_add(
    op: Operator, namespace: str, upstream_url: str, username: str | None, password_stdin: bool, tag_ttl: int
) -> None:
    """Make organization NS a pull-through cache of UPSTREAM_URL (docker.io means Docker Hub): a pull of
    NS/PATH fetches PATH from the upstream on a miss."""
    password = read_password(password_stdin)
    if username is not None and password is None:
        raise click.UsageError("--username needs --password-stdin")

    async def work(db: Database) -> ProxyView:
        return await _service(op, db).add(
            op.actor, namespace, upstream_url, username=username, password=password, tag_ttl_seconds=tag_ttl
        )

    view = op.run(work)
    op.emit(view, lambda: _print(view))


def _print(view: ProxyView) -> None:
    print_fields(
        f"proxy {view.namespace}",
        [
            ("upstream", view.upstream_url),
            ("username", view.username),
            ("password", "set" if view.has_password else None),
            ("tag TTL (s)", view.tag_ttl_seconds),
            ("created", view.created_at),
        ],
    )


@operator_command(proxy, "list")
def proxy_list(op: Operator) -> None:
    """List the proxy namespaces."""

    async def work(db: Database) -> list[ProxyView]:
        return await _service(op, db).list(op.actor)

    views = op.run(work)
    op.emit(
        views,
        lambda: print_table(
            "proxies",
            ["namespace", "upstream", "username", "tag TTL (s)"],
            [(v.namespace, v.upstream_url, v.username, v.tag_ttl_seconds) for v in views],
        ),
    )


@operator_command(proxy, "rm")
@click.argument("namespace", metavar="NS")
def proxy_rm(op: Operator, namespace: str) -> None:
    """Stop proxying into NS (what it cached stays, as its ordinary repositories)."""

    async def work(db: Database) -> None:
        await _service(op, db).remove(op.actor, namespace)

    op.run(work)
    op.emit({"removed": namespace}, lambda: click.echo(f"{namespace} is no longer a proxy"))
