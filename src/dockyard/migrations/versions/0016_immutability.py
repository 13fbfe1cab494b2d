"""tag immutability (Docker Hub's immutable_tags_settings on repositories, namespace rules) and the shared pull
rate-limit counters

Revision ID: 0016
Revises: 0014
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0016"
down_revision = "0014"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("immutable_tags", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("immutable_tags_rules", sa.Text(), nullable=False, server_default="[]"))
    op.create_table(
        "immutability_rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("pattern", sa.String(length=255), nullable=False),
        sa.Column("syntax", sa.String(length=8), nullable=False),
        sa.Column("repositories", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_immutability_rules")),
    )
    op.create_index("ix_immutability_rules_namespace", "immutability_rules", ["namespace"], unique=False)
    op.create_table(
        "pull_rate_counts",
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "window_start", name=op.f("pk_pull_rate_counts")),
    )
    op.create_index("ix_pull_rate_counts_window_start", "pull_rate_counts", ["window_start"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pull_rate_counts_window_start", table_name="pull_rate_counts")
    op.drop_table("pull_rate_counts")
    op.drop_index("ix_immutability_rules_namespace", table_name="immutability_rules")
    op.drop_table("immutability_rules")
    with op.batch_alter_table("repositories", schema=None) as batch_op:
        batch_op.drop_column("immutable_tags_rules")
        batch_op.drop_column("immutable_tags")
