"""vulnerability scanning: OSV data, scanned images, findings, VEX, allowlists and pull policies (dockyard.vulns)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_TIME = dockyard.models.base.UTCDateTime(timezone=True)
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ascii(length: int) -> sa.types.TypeEngine[str]:
    return sa.String(length=length).with_variant(sa.String(length=length, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "vuln_sources",
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("imported_at", _TIME, nullable=False),
        sa.Column("advisories", sa.Integer(), nullable=False),
        sa.Column("changed", sa.Integer(), nullable=False),
        sa.Column("duration_seconds", sa.Float(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_vuln_sources")),
    )
    op.create_table(
        "vuln_advisories",
        sa.Column("id", _ascii(255), nullable=False),
        sa.Column("aliases", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("modified", _TIME, nullable=False),
        sa.Column("published", _TIME, nullable=True),
        sa.Column("withdrawn", _TIME, nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("vectors", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_advisories")),
    )
    op.create_table(
        "vuln_affected",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("advisory_id", _ascii(255), nullable=False),
        sa.Column("ecosystem", sa.String(length=100), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("ranges", sa.Text(), nullable=False),
        sa.Column("versions", sa.Text(), nullable=False),
        sa.Column("fixed", sa.Text(), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_affected")),
    )
    op.create_index("ix_vuln_affected_package", "vuln_affected", ["ecosystem", "package"], unique=False)
    op.create_index("ix_vuln_affected_advisory", "vuln_affected", ["advisory_id"], unique=False)
    op.create_table(
        "vuln_image_packages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("manifest_digest", _ascii(140), nullable=False),
        sa.Column("ecosystem", sa.String(length=100), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("version", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("installed", sa.String(length=255), nullable=False),
        sa.Column("purl", sa.Text(), nullable=False),
        sa.Column("layer", sa.String(length=140), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_image_packages")),
    )
    op.create_index("ix_vuln_image_packages_package", "vuln_image_packages", ["ecosystem", "package"], unique=False)
    op.create_index("ix_vuln_image_packages_digest", "vuln_image_packages", ["manifest_digest"], unique=False)
    op.create_table(
        "vuln_scans",
        sa.Column("manifest_digest", _ascii(140), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("packages", sa.Integer(), nullable=False),
        sa.Column("findings", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("scanned_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("manifest_digest", name=op.f("pk_vuln_scans")),
    )
    op.create_table(
        "vuln_findings",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("manifest_digest", _ascii(140), nullable=False),
        sa.Column("advisory_id", _ascii(255), nullable=False),
        sa.Column("ecosystem", sa.String(length=100), nullable=False),
        sa.Column("package", sa.String(length=512), nullable=False),
        sa.Column("installed", sa.String(length=255), nullable=False),
        sa.Column("fixed", sa.String(length=255), nullable=True),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("purl", sa.Text(), nullable=False),
        sa.Column("layer", sa.String(length=140), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_findings")),
    )
    op.create_index("ix_vuln_findings_digest", "vuln_findings", ["manifest_digest"], unique=False)
    op.create_table(
        "vuln_vex",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("document", sa.String(length=512), nullable=False),
        sa.Column("vulnerability", sa.String(length=255), nullable=False),
        sa.Column("product", sa.Text(), nullable=False),
        sa.Column("subcomponent", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("statement_at", _TIME, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_vex")),
    )
    op.create_index("ix_vuln_vex_namespace", "vuln_vex", ["namespace", "vulnerability"], unique=False)
    op.create_table(
        "vuln_allowlist",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("vulnerability", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expires_at", _TIME, nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_allowlist")),
        sa.UniqueConstraint("namespace", "vulnerability", name="uq_vuln_allowlist_entry"),
    )
    op.create_table(
        "vuln_policies",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("namespace", _ascii(255), nullable=False),
        sa.Column("repository", _ascii(255), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("unscanned", sa.String(length=8), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vuln_policies")),
        sa.UniqueConstraint("namespace", "repository", name="uq_vuln_policies_scope"),
    )


def downgrade() -> None:
    op.drop_table("vuln_policies")
    op.drop_table("vuln_allowlist")
    op.drop_index("ix_vuln_vex_namespace", table_name="vuln_vex")
    op.drop_table("vuln_vex")
    op.drop_index("ix_vuln_findings_digest", table_name="vuln_findings")
    op.drop_table("vuln_findings")
    op.drop_table("vuln_scans")
    op.drop_index("ix_vuln_image_packages_digest", table_name="vuln_image_packages")
    op.drop_index("ix_vuln_image_packages_package", table_name="vuln_image_packages")
    op.drop_table("vuln_image_packages")
    op.drop_index("ix_vuln_affected_advisory", table_name="vuln_affected")
    op.drop_index("ix_vuln_affected_package", table_name="vuln_affected")
    op.drop_table("vuln_affected")
    op.drop_table("vuln_advisories")
    op.drop_table("vuln_sources")
