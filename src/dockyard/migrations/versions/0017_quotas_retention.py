"""quotas and retention: namespace usage and limits, per-namespace blob references, retention policies and runs

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "namespace_usage",
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("storage_bytes", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("storage_limit", sa.BigInteger(), nullable=True),
        sa.Column("repository_limit", sa.Integer(), nullable=True),
        sa.Column("soft_percent", sa.Integer(), server_default="80", nullable=False),
        sa.Column("warned", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", name=op.f("pk_namespace_usage")),
    )
    op.create_table(
        "namespace_blobs",
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("refs", sa.Integer(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "digest", name=op.f("pk_namespace_blobs")),
    )
    op.create_table(
        "retention_policies",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("repository", _ascii(255), server_default="", nullable=False),
        sa.Column("rules", sa.Text(), server_default="[]", nullable=False),
        sa.Column("keep_signed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("untagged_days", sa.Integer(), nullable=True),
        sa.Column("scheduled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_policies")),
    )
    op.create_index("uq_retention_policies_scope", "retention_policies", ["namespace", "repository"], unique=True)
    op.create_table(
        "retention_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("repository", _ascii(255), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.Column("tags_deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("manifests_deleted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_runs")),
    )
    op.create_index("ix_retention_runs_scope", "retention_runs", ["namespace", "repository", "id"])
    _count_existing()


def _count_existing() -> None:
    """Existing content: the usage of every namespace as ``dockyard quota recount`` computes it."""
    op.execute(
        "INSERT INTO namespace_blobs (namespace, digest, refs, size) "
        "SELECT r.namespace, rb.digest, COUNT(*), MAX(b.size) FROM repository_blobs rb "
        "JOIN repositories r ON r.id = rb.repository_id JOIN blobs b ON b.digest = rb.digest "
        "GROUP BY r.namespace, rb.digest"
    )
    op.execute(
        "INSERT INTO namespace_usage (namespace, storage_bytes) "
        "SELECT nb.namespace, SUM(nb.size) FROM namespace_blobs nb GROUP BY nb.namespace"
    )


def downgrade() -> None:
    op.drop_index("ix_retention_runs_scope", table_name="retention_runs")
    op.drop_table("retention_runs")
    op.drop_index("uq_retention_policies_scope", table_name="retention_policies")
    op.drop_table("retention_policies")
    op.drop_table("namespace_blobs")
    op.drop_table("namespace_usage")
