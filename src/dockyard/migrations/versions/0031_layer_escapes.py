"""A layer's index counts the entries whose name climbs above the image root (``layer_indexes.escapes``, the
first such name in ``escape_sample``): the inventory refuses those layers, as a container runtime would.

Revision ID: 0031
Revises: 0026
Create Date: 2026-12-06 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("layer_indexes", sa.Column("escapes", sa.Integer(), server_default="0", nullable=False))
    op.add_column("layer_indexes", sa.Column("escape_sample", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("layer_indexes") as batch:
        batch.drop_column("escape_sample")
        batch.drop_column("escapes")
