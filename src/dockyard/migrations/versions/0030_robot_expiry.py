"""Robot accounts expire: ``accounts.expires_at`` (set for robots only; NULL: never).

Revision ID: 0030
Revises: 0024
Create Date: 2026-12-06 15:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0030"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch: on SQLite a batch may copy `accounts` into a new table and drop the old
    # one, and with foreign keys on that drop cascades into every table that references an account.
    op.add_column("accounts", sa.Column("expires_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("accounts", "expires_at")
