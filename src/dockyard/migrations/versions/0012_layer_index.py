"""layer index: the per-layer file index of dockyard.layers (layer_indexes, layer_files)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "layer_indexes",
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("builder", sa.String(length=64), nullable=False),
        sa.Column("heartbeat_at", _TIME, nullable=False),
        sa.Column("entries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("skipped", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["digest"], ["blobs.digest"], name=op.f("fk_layer_indexes_digest_blobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_layer_indexes")),
    )
    op.create_table(
        "layer_files",
        sa.Column("layer_digest", sa.String(length=140), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("member", sa.Integer(), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("dir", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("gid", sa.BigInteger(), nullable=False),
        sa.Column("uname", sa.String(length=255), nullable=False),
        sa.Column("gname", sa.String(length=255), nullable=False),
        sa.Column("mtime", sa.BigInteger(), nullable=False),
        sa.Column("link", sa.Text(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_digest"],
            ["layer_indexes.digest"],
            name=op.f("fk_layer_files_layer_digest_layer_indexes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer_digest", "seq", name=op.f("pk_layer_files")),
    )
    with op.batch_alter_table("layer_files", schema=None) as batch_op:
        batch_op.create_index("ix_layer_files_dir", ["layer_digest", "dir"], unique=False)
        batch_op.create_index("ix_layer_files_path", ["layer_digest", "path"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("layer_files", schema=None) as batch_op:
        batch_op.drop_index("ix_layer_files_path")
        batch_op.drop_index("ix_layer_files_dir")
    op.drop_table("layer_files")
    op.drop_table("layer_indexes")
