"""upload sessions name their repository and account

Opening an upload session no longer creates the repository, so a session names the repository instead of
referencing its row; it records the account that opened it, whose open sessions are capped.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 00:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_NAME = sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repository", _NAME, nullable=True))
        batch_op.add_column(sa.Column("account_id", _ID, nullable=True))
    op.execute(
        "UPDATE uploads SET repository = (SELECT name FROM repositories WHERE repositories.id = uploads.repository_id)"
    )
    op.execute("DELETE FROM uploads WHERE repository IS NULL")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.alter_column("repository", existing_type=_NAME, nullable=False)
        batch_op.drop_index(batch_op.f("ix_uploads_repository_id"))
        batch_op.drop_constraint(batch_op.f("fk_uploads_repository_id_repositories"), type_="foreignkey")
        batch_op.drop_column("repository_id")
        batch_op.create_index(batch_op.f("ix_uploads_repository"), ["repository"], unique=False)
        batch_op.create_index(batch_op.f("ix_uploads_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_uploads_account_id_accounts"), "accounts", ["account_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("repository_id", _ID, nullable=True))
    op.execute(
        "UPDATE uploads SET repository_id = (SELECT id FROM repositories WHERE repositories.name = uploads.repository)"
    )
    # Sessions of repositories that do not exist yet cannot be kept in the old schema.
    op.execute("DELETE FROM uploads WHERE repository_id IS NULL")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_uploads_account_id_accounts"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_uploads_account_id"))
        batch_op.drop_index(batch_op.f("ix_uploads_repository"))
        batch_op.drop_column("account_id")
        batch_op.drop_column("repository")
        batch_op.alter_column("repository_id", existing_type=_ID, nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_uploads_repository_id_repositories"),
            "repositories",
            ["repository_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_uploads_repository_id"), ["repository_id"], unique=False)
