"""inventory: the SBOM inventory of dockyard.inventory (layer_inventories, layer_packages, image_inventories,
image_packages)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "layer_inventories",
        sa.Column("layer_digest", sa.String(length=140), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["layer_digest"],
            ["layer_indexes.digest"],
            name=op.f("fk_layer_inventories_layer_digest_layer_indexes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer_digest", name=op.f("pk_layer_inventories")),
    )
    op.create_table(
        "layer_packages",
        sa.Column("layer_digest", sa.String(length=140), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=True),
        sa.Column("source_version", sa.Text(), nullable=True),
        sa.Column("arch", sa.Text(), nullable=True),
        sa.Column("label", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["layer_digest"],
            ["layer_inventories.layer_digest"],
            name=op.f("fk_layer_packages_layer_digest_layer_inventories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("layer_digest", "seq", name=op.f("pk_layer_packages")),
    )
    op.create_table(
        "image_inventories",
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("config_digest", sa.String(length=140), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("os_id", sa.String(length=64), nullable=True),
        sa.Column("os_version", sa.String(length=64), nullable=True),
        sa.Column("os_name", sa.Text(), nullable=True),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("finished_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["config_digest"],
            ["blobs.digest"],
            name=op.f("fk_image_inventories_config_digest_blobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_image_inventories")),
    )
    with op.batch_alter_table("image_inventories", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_image_inventories_config_digest"), ["config_digest"], unique=False)
    op.create_table(
        "image_packages",
        sa.Column("image_digest", sa.String(length=140), nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("ecosystem", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("version", sa.Text(), nullable=False),
        sa.Column("purl", sa.Text(), nullable=False),
        sa.Column("layer", sa.String(length=140), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("release", sa.String(length=64), nullable=True),
        sa.Column("source_name", sa.String(length=1024), nullable=True),
        sa.Column("source_version", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["image_digest"],
            ["image_inventories.digest"],
            name=op.f("fk_image_packages_image_digest_image_inventories"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("image_digest", "seq", name=op.f("pk_image_packages")),
    )
    with op.batch_alter_table("image_packages", schema=None) as batch_op:
        batch_op.create_index("ix_image_packages_name", ["ecosystem", "name"], unique=False)
        batch_op.create_index("ix_image_packages_source", ["ecosystem", "source_name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("image_packages", schema=None) as batch_op:
        batch_op.drop_index("ix_image_packages_source")
        batch_op.drop_index("ix_image_packages_name")
    op.drop_table("image_packages")
    with op.batch_alter_table("image_inventories", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_image_inventories_config_digest"))
    op.drop_table("image_inventories")
    op.drop_table("layer_packages")
    op.drop_table("layer_inventories")
