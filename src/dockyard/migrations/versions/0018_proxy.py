"""pull-through cache: proxy namespaces, tag checks and blob fetch leases (dockyard.proxy)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 09:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "proxies",
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("upstream_url", sa.String(length=2048), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("password", sa.Text(), nullable=True),
        sa.Column("tag_ttl_seconds", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("namespace", name=op.f("pk_proxies")),
    )
    op.create_table(
        "proxy_tag_checks",
        sa.Column("repository", _ascii(255), nullable=False),
        sa.Column("tag", _ascii(128), nullable=False),
        sa.Column("checked_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("repository", "tag", name=op.f("pk_proxy_tag_checks")),
    )
    op.create_table(
        "proxy_fetches",
        sa.Column("digest", sa.String(length=140), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("lease_until", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_proxy_fetches")),
    )


def downgrade() -> None:
    op.drop_table("proxy_fetches")
    op.drop_table("proxy_tag_checks")
    op.drop_table("proxies")
