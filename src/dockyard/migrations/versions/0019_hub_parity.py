"""Docker Hub parity: group uuids, organization access tokens

Teams get Docker Hub's group ``uuid`` (existing teams one each); ``org_access_tokens`` holds organization access
tokens, each backed by a hidden robot account of its organization (``dockyard.models.hub``).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uuid", sa.String(length=36), nullable=True))
    teams = sa.table("teams", sa.column("id", _ID), sa.column("uuid", sa.String(length=36)))
    connection = op.get_bind()
    for (team_id,) in connection.execute(sa.select(teams.c.id)).all():
        connection.execute(sa.update(teams).where(teams.c.id == team_id).values(uuid=str(uuid.uuid4())))
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.alter_column("uuid", existing_type=sa.String(length=36), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_teams_uuid"), ["uuid"])

    op.create_table(
        "org_access_tokens",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("robot_id", _ID, nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("resources", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["accounts.id"], name=op.f("fk_org_access_tokens_org_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["robot_id"], ["accounts.id"], name=op.f("fk_org_access_tokens_robot_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_access_tokens")),
        sa.UniqueConstraint("robot_id", name=op.f("uq_org_access_tokens_robot_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_org_access_tokens_token_hash")),
    )
    with op.batch_alter_table("org_access_tokens", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_access_tokens_org_id"), ["org_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_access_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_access_tokens_org_id"))
    op.drop_table("org_access_tokens")
    with op.batch_alter_table("teams", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_teams_uuid"), type_="unique")
        batch_op.drop_column("uuid")
