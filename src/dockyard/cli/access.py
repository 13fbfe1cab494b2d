"""``dockyard robot …``, ``dockyard token …`` and ``dockyard repo set-visibility``: machine credentials, personal
access tokens and repository visibility, managed by the server's operator. Secrets are printed once."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from dockyard.accounts.access_tokens import AccessTokenService
from dockyard.accounts.grants import parse_level
from dockyard.accounts.robots import KEEP, ExpiryChange, RobotService
from dockyard.accounts.snapshots import RobotInfo, TokenInfo
from dockyard.accounts.visibility import set_visibility
from dockyard.authz.permissions import Level
from dockyard.authz.principal import TOKEN_SCOPES
from dockyard.cli.common import Group, Operator, every_page, operator_command, print_fields, print_table, show_secret
from dockyard.cli.ids import unique_start
from dockyard.db.engine import Database
from dockyard.errors import Invalid

_DURATION = re.compile(r"^(\d{1,6})([hdw])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def parse_expiry(value: str | None, now: datetime) -> datetime | None:
    """``30d``, ``12h``, ``2w`` from now, or an ISO 8601 date / date-time (UTC unless it says otherwise)."""
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if match:
        return now + int(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter("give a duration (30d, 12h, 2w) or an ISO 8601 date", param_hint="--expires") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_grants(org: str, specs: tuple[str, ...]) -> dict[str, Level]:
    """``REPO:PERM`` pairs; a repository without a namespace is the organization's."""
    grants: dict[str, Level] = {}
    for spec in specs:
        repository, sep, level = spec.rpartition(":")
        if not sep or not repository:
            raise click.BadParameter(f"{spec!r}: expected REPO:read|write|admin", param_hint="--repo")
        if "/" not in repository:
            repository = f"{org}/{repository}"
        try:
            grants[repository] = parse_level(level)
        except Invalid as exc:
            raise click.BadParameter(f"{spec!r}: {exc.message}", param_hint="--repo") from None
    return grants


def _print_robot(robot: RobotInfo) -> None:
    print_fields(
        f"robot {robot.name}",
        [
            ("description", robot.description),
            ("disabled", robot.disabled),
            ("permissions", [f"{g.repository}:{g.level.label}" for g in robot.permissions]),
            ("expires", robot.expires_at or "never"),
            ("created", robot.created_at),
        ],
    )


@click.group(cls=Group)
def robot() -> None:
    """Robot accounts of organizations (org+name) for CI and other machines."""


@operator_command(robot, "create")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="NAME")
@click.option("--repo", "repos", multiple=True, metavar="REPO:PERM", help="A grant, e.g. app:read (repeatable).")
@click.option("--description", default="", help="What the robot is for.")
@click.option("--expires", default=None, help="30d, 12h, 2w or an ISO 8601 date (default: never).")
def robot_create(
    op: Operator, org_name: str, name: str, repos: tuple[str, ...], description: str, expires: str | None
) -> None:
    """Create a robot and print its name and secret (once)."""
    grants = parse_grants(org_name, repos)
    expires_at = parse_expiry(expires, datetime.now(UTC))

    async def work(db: Database) -> tuple[RobotInfo, str]:
        return await RobotService(db, op.settings).create_robot(
            org_name, name, description=description, permissions=grants, expires_at=expires_at, actor=op.actor
        )

    created, secret = op.run(work)

    def human() -> None:
        _print_robot(created)
        click.echo(f"username: {created.name}")
        show_secret("secret", secret)

    op.emit({"robot": created, "username": created.name, "secret": secret}, human)


@operator_command(robot, "list")
@click.argument("org_name", metavar="ORG")
def robot_list(op: Operator, org_name: str) -> None:
    """List an organization's robots and their permissions."""

    async def work(db: Database) -> list[RobotInfo]:
        service = RobotService(db, op.settings)
        return await every_page(lambda page: service.list_robots(org_name, page, actor=op.actor))

    robots = op.run(work)
    op.emit(
        robots,
        lambda: print_table(
            f"robots of {org_name}",
            ["name", "permissions", "disabled", "expires", "description"],
            [
                (
                    r.name,
                    [f"{g.repository}:{g.level.label}" for g in r.permissions],
                    r.disabled,
                    r.expires_at or "never",
                    r.description,
                )
                for r in robots
            ],
        ),
    )


@operator_command(robot, "update")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="NAME")
@click.option("--repo", "repos", multiple=True, metavar="REPO:PERM", help="Replace all grants with these (repeatable).")
@click.option("--no-repos", is_flag=True, help="Take every grant away.")
@click.option("--description", default=None, help="A new description.")
@click.option("--expires", default=None, help="30d, 12h, 2w, an ISO 8601 date, or 'never'.")
@click.option("--disable/--enable", "disabled", default=None, help="Switch the robot off (or on again).")
def robot_update(
    op: Operator,
    org_name: str,
    name: str,
    repos: tuple[str, ...],
    no_repos: bool,
    description: str | None,
    expires: str | None,
    disabled: bool | None,
) -> None:
    """Change a robot: its grants, description, expiry, or switch it off or on."""
    if repos and no_repos:
        raise click.UsageError("give --repo or --no-repos, not both")
    grants = parse_grants(org_name, repos) if repos else ({} if no_repos else None)
    expires_at: ExpiryChange = KEEP
    if expires is not None:
        expires_at = None if expires.strip().lower() == "never" else parse_expiry(expires, datetime.now(UTC))

    async def work(db: Database) -> RobotInfo:
        return await RobotService(db, op.settings).update_robot(
            org_name,
            name,
            description=description,
            disabled=disabled,
            permissions=grants,
            expires_at=expires_at,
            actor=op.actor,
        )

    updated = op.run(work)
    op.emit(updated, lambda: _print_robot(updated))


@operator_command(robot, "regenerate-secret")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="NAME")
def robot_regenerate(op: Operator, org_name: str, name: str) -> None:
    """Replace a robot's secret (the old one stops working) and print the new one (once)."""

    async def work(db: Database) -> str:
        return await RobotService(db, op.settings).regenerate_secret(org_name, name, actor=op.actor)

    secret = op.run(work)
    op.emit({"secret": secret}, lambda: show_secret("new secret", secret))


@operator_command(robot, "delete")
@click.argument("org_name", metavar="ORG")
@click.argument("name", metavar="NAME")
def robot_delete(op: Operator, org_name: str, name: str) -> None:
    """Delete a robot."""

    async def work(db: Database) -> None:
        await RobotService(db, op.settings).delete_robot(org_name, name, actor=op.actor)

    op.run(work)
    op.emit({"org": org_name, "deleted": name}, lambda: click.echo(f"deleted robot {name} of {org_name}"))


@click.group(cls=Group)
def token() -> None:
    """Personal access tokens of users."""


def _token_rows(tokens: list[TokenInfo], now: datetime) -> list[tuple[object, ...]]:
    return [
        (
            t.uuid,
            t.token_label,
            list(t.scopes),
            "revoked" if not t.is_active else "expired" if t.is_expired(now) else "active",
            t.expires_at,
            t.last_used,
            t.token_prefix + "…",
        )
        for t in tokens
    ]


@operator_command(token, "create")
@click.argument("username", metavar="USER")
@click.option("--label", required=True, help="What the token is for (1-100 characters).")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    required=True,
    type=click.Choice(TOKEN_SCOPES),
    help="repo:admin, repo:write, repo:read or repo:public_read (repeatable).",
)
@click.option("--expires", default=None, help="30d, 12h, 2w or an ISO 8601 date (default: never).")
@click.option("--repo", "repos", multiple=True, metavar="NS/REPO", help="Limit the token to these repositories.")
def token_create(
    op: Operator, username: str, label: str, scopes: tuple[str, ...], expires: str | None, repos: tuple[str, ...]
) -> None:
    """Create a personal access token for a user and print its secret (once)."""
    expires_at = parse_expiry(expires, datetime.now(UTC))

    async def work(db: Database) -> tuple[TokenInfo, str]:
        return await AccessTokenService(db, op.settings).create(
            op.actor,
            label=label,
            scopes=list(scopes),
            expires_at=expires_at,
            repositories=list(repos) or None,
            username=username,
        )

    created, secret = op.run(work)

    def human() -> None:
        click.echo(f"created token {created.uuid} ({created.token_label}) for {username}")
        show_secret("token", secret)

    op.emit({"token": created, "secret": secret}, human)


@operator_command(token, "list")
@click.argument("username", metavar="USER")
def token_list(op: Operator, username: str) -> None:
    """List a user's access tokens (never their secrets)."""

    async def work(db: Database) -> list[TokenInfo]:
        service = AccessTokenService(db, op.settings)
        return await every_page(lambda page: service.list(op.actor, page, username=username))

    tokens = op.run(work)
    op.emit(
        tokens,
        lambda: print_table(
            f"access tokens of {username}",
            ["uuid", "label", "scopes", "state", "expires", "last used", "starts with"],
            _token_rows(tokens, datetime.now(UTC)),
        ),
    )


@operator_command(token, "revoke")
@click.argument("username", metavar="USER")
@click.argument("token_id", metavar="UUID")
def token_revoke(op: Operator, username: str, token_id: str) -> None:
    """Revoke a user's access token (UUID: its uuid, or a unique start of it): it stops working at once."""

    async def work(db: Database) -> TokenInfo:
        service = AccessTokenService(db, op.settings)
        tokens = await every_page(lambda page: service.list(op.actor, page, username=username))
        full = unique_start("token", token_id, [t.uuid for t in tokens])
        return await service.update(op.actor, full, is_active=False)

    revoked = op.run(work)
    op.emit(revoked, lambda: click.echo(f"revoked token {revoked.uuid} ({revoked.token_label}) of {username}"))


@click.group(cls=Group)
def repo() -> None:
    """Repository settings."""


@operator_command(repo, "set-visibility")
@click.argument("repository", metavar="NS/REPO")
@click.argument("visibility", type=click.Choice(["public", "private"]))
def repo_set_visibility(op: Operator, repository: str, visibility: str) -> None:
    """Make a repository public (anyone may pull) or private."""
    private = visibility == "private"

    async def work(db: Database) -> bool:
        return await set_visibility(db, repository, private, actor=op.actor)

    changed = op.run(work)
    op.emit(
        {"repository": repository, "visibility": visibility, "changed": changed},
        lambda: click.echo(f"{repository} is {visibility}" + ("" if changed else " (unchanged)")),
    )
