"""Organization invites: ``org_invites`` (``dockyard.models.hub.OrgInvite``; ``dockyard.accounts.invites``).

Revision ID: 0021
Revises: 0023
Create Date: 2026-12-06 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0021"
down_revision = "0023"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "org_invites",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("org_id", _ID, nullable=False),
        sa.Column("team_id", _ID, nullable=True),
        sa.Column("invitee", sa.String(length=320), nullable=False),
        sa.Column("invitee_id", _ID, nullable=True),
        sa.Column("role", sa.String(length=8), nullable=False),
        sa.Column("inviter", sa.String(length=255), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("token_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["accounts.id"], name=op.f("fk_org_invites_org_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["invitee_id"], ["accounts.id"], name=op.f("fk_org_invites_invitee_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_org_invites_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_org_invites")),
        sa.UniqueConstraint("org_id", "invitee", name="uq_org_invites_org_invitee"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_org_invites_token_hash")),
    )
    with op.batch_alter_table("org_invites", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_org_invites_invitee_id"), ["invitee_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("org_invites", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_org_invites_invitee_id"))
    op.drop_table("org_invites")
