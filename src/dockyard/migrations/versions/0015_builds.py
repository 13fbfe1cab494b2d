"""automated builds: source links, build rules, builds, their live log lines and base-image links (dockyard.builds)

Revision ID: 0015
Revises: 0019
Create Date: 2026-12-06 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0015"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "build_links",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column(
            "repository",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "namespace",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("auth", sa.String(length=16), nullable=False),
        sa.Column("https_username", sa.String(length=255), nullable=True),
        sa.Column("https_token", sa.Text(), nullable=True),
        sa.Column("ssh_private_key", sa.Text(), nullable=True),
        sa.Column("ssh_public_key", sa.Text(), nullable=True),
        sa.Column("ssh_known_hosts", sa.Text(), nullable=True),
        sa.Column("webhook_secret", sa.Text(), nullable=False),
        sa.Column("trigger_token", sa.String(length=64), nullable=False),
        sa.Column("poll_interval_seconds", sa.Integer(), nullable=False),
        sa.Column("polled_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("polled_refs", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_links")),
        sa.UniqueConstraint("repository", name=op.f("uq_build_links_repository")),
        sa.UniqueConstraint("trigger_token", name=op.f("uq_build_links_trigger_token")),
    )
    op.create_index(op.f("ix_build_links_namespace"), "build_links", ["namespace"], unique=False)
    op.create_table(
        "build_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("link_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("source_type", sa.String(length=8), nullable=False),
        sa.Column("source_name", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.Column("dockerfile", sa.String(length=1024), nullable=False),
        sa.Column("context", sa.String(length=1024), nullable=False),
        sa.Column("build_args", sa.Text(), nullable=False),
        sa.Column("autobuild", sa.Boolean(), nullable=False),
        sa.Column("build_cache", sa.Boolean(), nullable=False),
        sa.Column("also_latest", sa.Boolean(), nullable=False),
        sa.Column("network", sa.Boolean(), nullable=False),
        sa.Column("created_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["build_links.id"], name=op.f("fk_build_rules_link_id_build_links"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_rules")),
        sa.UniqueConstraint("uuid", name=op.f("uq_build_rules_uuid")),
    )
    op.create_index(op.f("ix_build_rules_link_id"), "build_rules", ["link_id"], unique=False)
    op.create_table(
        "build_bases",
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "repository",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["build_rules.id"], name=op.f("fk_build_bases_rule_id_build_rules"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("rule_id", "repository", "tag", name=op.f("pk_build_bases")),
    )
    op.create_index("ix_build_bases_repository", "build_bases", ["repository", "tag"], unique=False)
    op.create_table(
        "builds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column(
            "repository",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "namespace",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("coalesce_key", sa.String(length=600), nullable=False),
        sa.Column("source_type", sa.String(length=8), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("commit", sa.String(length=64), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("dockerfile", sa.String(length=1024), nullable=False),
        sa.Column("context", sa.String(length=1024), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=200), nullable=True),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("log_digest", sa.String(length=200), nullable=True),
        sa.Column("log_size", sa.Integer(), nullable=False),
        sa.Column("created_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["build_rules.id"], name=op.f("fk_builds_rule_id_build_rules"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_builds")),
        sa.UniqueConstraint("uuid", name=op.f("uq_builds_uuid")),
    )
    op.create_index("ix_builds_log_digest", "builds", ["log_digest"], unique=False)
    op.create_index("ix_builds_repository", "builds", ["repository", "id"], unique=False)
    op.create_index(
        "uq_builds_queued",
        "builds",
        ["coalesce_key"],
        unique=True,
        sqlite_where=sa.text("state = 'queued'"),
        postgresql_where=sa.text("state = 'queued'"),
    )
    op.create_table(
        "build_log_lines",
        sa.Column("build_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["build_id"], ["builds.id"], name=op.f("fk_build_log_lines_build_id_builds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("build_id", "seq", name=op.f("pk_build_log_lines")),
    )


def downgrade() -> None:
    op.drop_table("build_log_lines")
    op.drop_index("uq_builds_queued", table_name="builds")
    op.drop_index("ix_builds_repository", table_name="builds")
    op.drop_index("ix_builds_log_digest", table_name="builds")
    op.drop_table("builds")
    op.drop_index("ix_build_bases_repository", table_name="build_bases")
    op.drop_table("build_bases")
    op.drop_index(op.f("ix_build_rules_link_id"), table_name="build_rules")
    op.drop_table("build_rules")
    op.drop_index(op.f("ix_build_links_namespace"), table_name="build_links")
    op.drop_table("build_links")
