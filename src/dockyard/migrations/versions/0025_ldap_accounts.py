"""LDAP sign-in: ``accounts.auth_source`` marks the users an external directory owns
(``dockyard.accounts.ldap_sign_in``).

Revision ID: 0025
Revises: 0030
Create Date: 2026-12-06 15:20:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, also on SQLite: a batch operation would copy and drop ``accounts``, and the drop would
    # cascade to every table that references it.
    op.add_column("accounts", sa.Column("auth_source", sa.String(length=16), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "auth_source")
