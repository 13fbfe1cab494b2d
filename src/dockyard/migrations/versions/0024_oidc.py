"""Single sign-on (OpenID Connect): ``oidc_identities``, ``oidc_logins`` and ``oidc_team_grants``
(``dockyard.models.oidc``; ``dockyard.auth.oidc``, ``dockyard.accounts.oidc_users``).

Revision ID: 0024
Revises: 0021
Create Date: 2026-12-06 15:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0024"
down_revision = "0021"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "oidc_identities",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("cli_secret", sa.Text(), nullable=False),
        sa.Column("cli_secret_hash", sa.String(length=64), nullable=False),
        sa.Column("groups", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_sign_in_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_oidc_identities_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_oidc_identities")),
        sa.UniqueConstraint("issuer", "subject", name="uq_oidc_identities_issuer_subject"),
    )
    op.create_table(
        "oidc_logins",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("code_verifier", sa.Text(), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_logins")),
    )
    with op.batch_alter_table("oidc_logins", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_logins_expires_at"), ["expires_at"], unique=False)
    op.create_table(
        "oidc_team_grants",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("team_id", _ID, nullable=False),
        sa.Column("group_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_oidc_team_grants_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_oidc_team_grants_team_id_teams"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", "team_id", name=op.f("pk_oidc_team_grants")),
    )
    with op.batch_alter_table("oidc_team_grants", schema=None) as batch_op:
        batch_op.create_index("ix_oidc_team_grants_team_id", ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oidc_team_grants", schema=None) as batch_op:
        batch_op.drop_index("ix_oidc_team_grants_team_id")
    op.drop_table("oidc_team_grants")
    with op.batch_alter_table("oidc_logins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_logins_expires_at"))
    op.drop_table("oidc_logins")
    op.drop_table("oidc_identities")
