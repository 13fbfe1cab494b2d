"""``dockyard ldap seal-password``: the LDAP search account's password sealed with this server's secret, for the
``ldap_bind_password_sealed`` setting (docs/auth.md "Single sign-on: LDAP"), so that the configuration file never
holds it in clear. The password is read from standard input, never from the command line."""

from __future__ import annotations

import click

from dockyard.auth.ldap import seal_bind_password
from dockyard.cli.common import Operator, operator_command, read_password


@click.group()
def ldap() -> None:
    """LDAP sign-in (ldap_* settings)."""


@operator_command(ldap, "seal-password")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the bind password from standard input.")
def ldap_seal_password(op: Operator, password_stdin: bool) -> None:
    """Print the bind password (on standard input) sealed with this server's secret: the value of
    ldap_bind_password_sealed. Every replica shares the secret, so one value serves them all."""
    from dockyard.startup import resolve_secret_key

    password = read_password(password_stdin)
    assert password is not None  # --password-stdin is required
    sealed = seal_bind_password(resolve_secret_key(op.settings), password)
    op.emit({"ldap_bind_password_sealed": sealed}, lambda: click.echo(sealed))
