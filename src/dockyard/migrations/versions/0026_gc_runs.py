"""The history of garbage collections: ``gc_runs`` (``dockyard.models.maintenance.GCRun``; the site-admin page).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 15:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "gc_runs",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("started_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=False),
        sa.Column("manifests", sa.Integer(), nullable=False),
        sa.Column("blob_links", sa.Integer(), nullable=False),
        sa.Column("blobs", sa.Integer(), nullable=False),
        sa.Column("uploads", sa.Integer(), nullable=False),
        sa.Column("bytes_freed", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gc_runs")),
    )
    with op.batch_alter_table("gc_runs", schema=None) as batch_op:
        batch_op.create_index("ix_gc_runs_finished_at", ["finished_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("gc_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_gc_runs_finished_at")
    op.drop_table("gc_runs")
