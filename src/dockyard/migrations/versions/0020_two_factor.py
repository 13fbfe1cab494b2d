"""Two-factor sign-in: TOTP factors, recovery codes, second-factor challenges, and the organizations'
"require two-factor" setting (``dockyard.models.two_factor``).

Revision ID: 0020
Revises: 0015
Create Date: 2026-12-06 12:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0020"
down_revision = "0015"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch: on SQLite a batch may copy `accounts` into a new table and drop the old
    # one, and with foreign keys on that drop cascades into every table that references an account.
    op.add_column("accounts", sa.Column("require_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False))

    op.create_table(
        "two_factor",
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("enabled_at", _TIME, nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_two_factor_account_id_accounts"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_two_factor")),
    )
    op.create_table(
        "two_factor_recovery_codes",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", _TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_two_factor_recovery_codes_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_two_factor_recovery_codes")),
        sa.UniqueConstraint("account_id", "code_hash", name="uq_two_factor_recovery_codes_account_code"),
    )
    with op.batch_alter_table("two_factor_recovery_codes", schema=None) as batch_op:
        batch_op.create_index("ix_two_factor_recovery_codes_account_id", ["account_id"], unique=False)
    op.create_table(
        "two_factor_challenges",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", _ID, nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_two_factor_challenges_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_two_factor_challenges")),
    )
    with op.batch_alter_table("two_factor_challenges", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_two_factor_challenges_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_two_factor_challenges_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("two_factor_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_two_factor_challenges_expires_at"))
        batch_op.drop_index(batch_op.f("ix_two_factor_challenges_account_id"))
    op.drop_table("two_factor_challenges")
    with op.batch_alter_table("two_factor_recovery_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_two_factor_recovery_codes_account_id")
    op.drop_table("two_factor_recovery_codes")
    op.drop_table("two_factor")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("require_two_factor")
