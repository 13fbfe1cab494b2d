"""``dockyard webhook add|list|rm|test|deliveries|redeliver``: webhooks of namespaces and repositories, managed by
the server's operator over ``dockyard.webhooks.manage``. The signing secret is printed once, when a webhook is
added; deliveries queued here go out from the server's (or a ``dockyard worker``'s) job runner."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import click

from dockyard.auth.secrets import SecretBox
from dockyard.cli.common import (
    Group,
    Operator,
    every_page,
    jsonable,
    operator_command,
    parse_scope,
    print_fields,
    print_table,
    show_secret,
)
from dockyard.cli.ids import unique_start
from dockyard.core.paging import MAX_PAGE_SIZE, PageRequest
from dockyard.db.engine import Database
from dockyard.webhooks.dispatch import public_base_url
from dockyard.webhooks.hmac import SIGNATURE_HEADER
from dockyard.webhooks.manage import WebhookService
from dockyard.webhooks.snapshots import PAYLOAD_FORMATS, DeliveryView, WebhookView


def as_api(value: Any) -> Any:
    """Webhook and delivery views as the Hub API names their fields: ``id``, not ``uuid``."""

    def rename(item: Any) -> Any:
        if isinstance(item, dict):
            return {("id" if key == "uuid" else key): rename(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [rename(inner) for inner in item]
        return item

    return rename(jsonable(value))


def default_name(url: str) -> str:
    """A webhook's name when none is given: the receiver's host."""
    return (urlsplit(url).hostname or "webhook")[:100]


def _service(op: Operator, db: Database) -> WebhookService:
    from dockyard.app import resolve_secret_key

    return WebhookService(db, SecretBox(resolve_secret_key(op.settings).secret_key))


def _scope(hook: WebhookView) -> str:
    return hook.repository or f"{hook.namespace} (every repository)"


def _print_webhook(hook: WebhookView) -> None:
    print_fields(
        f"webhook {hook.uuid}",
        [
            ("name", hook.name),
            ("scope", _scope(hook)),
            ("url", hook.url),
            ("events", list(hook.events)),
            ("tag filter", hook.tag_filter),
            ("format", hook.payload_format),
            ("auth header", "set" if hook.has_auth_header else None),
            ("after", hook.after),
            ("active", hook.active),
            ("disabled because", hook.disabled_reason),
            ("created", hook.created_at),
        ],
    )


@click.group(cls=Group)
def webhook() -> None:
    """Webhooks: HTTP callbacks on pushes, deletions and other events of a namespace or a repository."""


@operator_command(webhook, "add")
@click.argument("target", metavar="NS[/REPO]")
@click.argument("url", metavar="URL")
@click.option("--name", default=None, help="A label (default: the URL's host).")
@click.option(
    "--event", "events", multiple=True, metavar="EVENT", help="An event to deliver (repeatable; default push)."
)
@click.option(
    "--format",
    "payload_format",
    type=click.Choice(PAYLOAD_FORMATS),
    default="dockerhub",
    show_default=True,
    help="The payload format the receiver expects (docs/webhooks.md).",
)
@click.option("--tag-filter", default=None, metavar="GLOB", help="Only tags matching this glob (e.g. 'v*').")
@click.option("--auth-header", default=None, metavar='"NAME: VALUE"', help="A header sent with every delivery.")
@click.option("--after", default=None, metavar="UUID", help="Fire only after this webhook's callback says success.")
@click.option("--inactive", is_flag=True, help="Add it disabled (deliver nothing until enabled).")
def webhook_add(
    op: Operator,
    target: str,
    url: str,
    name: str | None,
    events: tuple[str, ...],
    payload_format: str,
    tag_filter: str | None,
    auth_header: str | None,
    after: str | None,
    inactive: bool,
) -> None:
    """Add a webhook to a namespace (NS: every repository) or a repository, and print its signing secret (once)."""
    namespace, repository = parse_scope(target)

    async def work(db: Database) -> tuple[WebhookView, str]:
        return await _service(op, db).create(
            op.actor,
            namespace,
            repository,
            name=name or default_name(url),
            url=url,
            events=list(events) or None,
            tag_filter=tag_filter,
            payload_format=payload_format,
            auth_header=auth_header,
            after=after,
            active=not inactive,
        )

    hook, secret = op.run(work)

    def human() -> None:
        _print_webhook(hook)
        show_secret("signing secret", secret)
        click.echo(f"Receivers verify {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the raw body with this secret>.")

    op.emit(as_api({"webhook": hook, "secret": secret}), human)


@operator_command(webhook, "list")
@click.argument("target", metavar="NS[/REPO]")
def webhook_list(op: Operator, target: str) -> None:
    """List the webhooks of a namespace (its namespace-wide ones) or of a repository."""
    namespace, repository = parse_scope(target)

    async def work(db: Database) -> list[WebhookView]:
        service = _service(op, db)
        return await every_page(lambda page: service.list(op.actor, namespace, repository, page))

    hooks = op.run(work)
    op.emit(
        as_api(hooks),
        lambda: print_table(
            f"webhooks of {repository or namespace}",
            ["id", "name", "url", "events", "format", "active", "failures"],
            [
                (h.uuid, h.name, h.url, list(h.events), h.payload_format, h.active, h.consecutive_failures)
                for h in hooks
            ],
        ),
    )


@operator_command(webhook, "rm")
@click.argument("webhook_id", metavar="ID")
def webhook_rm(op: Operator, webhook_id: str) -> None:
    """Delete a webhook and its delivery history."""

    async def work(db: Database) -> str:
        service = _service(op, db)
        full_id = await service.resolve_id(webhook_id)
        await service.delete(op.actor, full_id)
        return full_id

    deleted = op.run(work)
    op.emit({"deleted": deleted}, lambda: click.echo(f"deleted webhook {deleted}"))


@operator_command(webhook, "test")
@click.argument("webhook_id", metavar="ID")
def webhook_test(op: Operator, webhook_id: str) -> None:
    """Queue a sample push delivery to the webhook; see it with `dockyard webhook deliveries`."""

    async def work(db: Database) -> DeliveryView:
        service = _service(op, db)
        full_id = await service.resolve_id(webhook_id)
        return await service.send_test(op.actor, full_id, base_url=public_base_url(op.settings))

    delivery = op.run(work)
    op.emit(as_api(delivery), lambda: click.echo(f"queued test delivery {delivery.uuid} ({delivery.state})"))


@operator_command(webhook, "deliveries")
@click.argument("webhook_id", metavar="ID")
@click.option(
    "--limit", type=click.IntRange(1, MAX_PAGE_SIZE), default=20, show_default=True, help="How many, newest first."
)
def webhook_deliveries(op: Operator, webhook_id: str, limit: int) -> None:
    """The webhook's latest deliveries, newest first."""

    async def work(db: Database) -> list[DeliveryView]:
        service = _service(op, db)
        page = await service.deliveries(op.actor, await service.resolve_id(webhook_id), PageRequest(1, limit))
        return page.items

    deliveries = op.run(work)
    op.emit(
        as_api(deliveries),
        lambda: print_table(
            f"deliveries of {webhook_id}",
            ["id", "event", "state", "attempts", "created", "completed", "last error"],
            [(d.uuid, d.event, d.state, d.attempts, d.created_at, d.completed_at, d.last_error) for d in deliveries],
        ),
    )


FULL_ID = 36  # a whole delivery id (a UUID): redelivered without listing the webhook's deliveries


@operator_command(webhook, "redeliver")
@click.argument("webhook_id", metavar="ID")
@click.argument("delivery_id", metavar="DELIVERY")
def webhook_redeliver(op: Operator, webhook_id: str, delivery_id: str) -> None:
    """Send a past delivery's body again, as a new delivery (ID and DELIVERY: ids, or unique starts of them)."""

    async def work(db: Database) -> DeliveryView:
        service = _service(op, db)
        hook = await service.resolve_id(webhook_id)
        wanted = delivery_id.strip().lower()
        if len(wanted) < FULL_ID:
            deliveries = await every_page(lambda page: service.deliveries(op.actor, hook, page))
            wanted = unique_start("delivery", wanted, [d.uuid for d in deliveries])
        return await service.redeliver(op.actor, hook, wanted)

    delivery = op.run(work)
    op.emit(as_api(delivery), lambda: click.echo(f"queued delivery {delivery.uuid} (again {delivery_id})"))
