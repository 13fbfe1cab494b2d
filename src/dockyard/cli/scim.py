"""``dockyard org scim-token create|show|revoke ORG``: an organization's SCIM token, for its identity provider
(``accounts/scim_tokens.py``; docs/auth.md, "SCIM provisioning")."""

from __future__ import annotations

import click

from dockyard.accounts.scim_tokens import ScimTokenInfo, ScimTokenService
from dockyard.cli.common import Group, Operator, operator_command, print_fields, show_secret
from dockyard.db.engine import Database


@click.group(cls=Group, name="scim-token")
def scim_token() -> None:
    """An organization's SCIM token (created or rotated, shown, revoked)."""


def _print(info: ScimTokenInfo) -> None:
    print_fields(
        f"SCIM token of {info.org}",
        [
            ("prefix", info.token_prefix),
            ("created by", info.created_by),
            ("created", info.created_at),
            ("last used", info.last_used_at),
        ],
    )


@operator_command(scim_token, "create")
@click.argument("org")
def scim_token_create(op: Operator, org: str) -> None:
    """Create the organization's SCIM token, replacing (revoking) any previous one; the secret is printed once."""

    async def work(db: Database) -> tuple[ScimTokenInfo, str]:
        return await ScimTokenService(db).create(org, actor=op.actor)

    info, secret = op.run(work)

    def human() -> None:
        _print(info)
        click.echo("SCIM base URL: <server URL>/api/v2/scim/2.0")
        show_secret("token", secret)

    op.emit({"token": info, "secret": secret}, human)


@operator_command(scim_token, "show")
@click.argument("org")
def scim_token_show(op: Operator, org: str) -> None:
    """Show the token's prefix, creator and dates (never the secret)."""

    async def work(db: Database) -> ScimTokenInfo:
        return await ScimTokenService(db).get(org, actor=op.actor)

    info = op.run(work)
    op.emit(info, lambda: _print(info))


@operator_command(scim_token, "revoke")
@click.argument("org")
def scim_token_revoke(op: Operator, org: str) -> None:
    """Revoke the token: the identity provider's requests are refused from now on."""

    async def work(db: Database) -> None:
        await ScimTokenService(db).revoke(org, actor=op.actor)

    op.run(work)
    op.emit({"org": org, "revoked": True}, lambda: click.echo(f"revoked the SCIM token of {org}"))
