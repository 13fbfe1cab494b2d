"""replication: rules, runs and per-artifact results (dockyard.replication)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06 12:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "replication_rules",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("remote_url", sa.String(length=2048), nullable=False),
        sa.Column("remote_namespace", _ascii(255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("repository_filter", sa.String(length=255), nullable=False),
        sa.Column("tag_filter", sa.String(length=255), nullable=False),
        sa.Column("replicate_deletes", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("schedule_seconds", sa.Integer(), nullable=True),
        sa.Column("bandwidth_limit_kib", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_scheduled_at", _TIME, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_rules")),
        sa.UniqueConstraint("namespace", "name", name=op.f("uq_replication_rules_namespace")),
    )
    op.create_table(
        "replication_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("rule_id", _ID, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("copied", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("deleted", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("bytes_copied", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME, nullable=True),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["replication_rules.id"],
            name=op.f("fk_replication_runs_rule_id_replication_rules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_runs")),
    )
    op.create_index("ix_replication_runs_rule", "replication_runs", ["rule_id", "id"], unique=False)
    op.create_table(
        "replication_results",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("run_id", _ID, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=512), nullable=False),
        sa.Column("destination", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=True),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=True),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["replication_runs.id"],
            name=op.f("fk_replication_results_run_id_replication_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replication_results")),
    )
    op.create_index("ix_replication_results_run", "replication_results", ["run_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_replication_results_run", table_name="replication_results")
    op.drop_table("replication_results")
    op.drop_index("ix_replication_runs_rule", table_name="replication_runs")
    op.drop_table("replication_runs")
    op.drop_table("replication_rules")
