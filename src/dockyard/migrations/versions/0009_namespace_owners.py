"""namespace owners: reserved names, archived audit entries, an organization for every namespace without an account

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 00:30:00

Data: every namespace that repositories, webhooks, trusted keys or identities, trust policies or a managed
signing key name but no account owns becomes an organization owned by the first site administrator (the lowest
id), audited as ``org.create`` with ``{"reason": "migration: namespace without account"}``. Without any
administrator nothing is created: those names stay unclaimable (``name_use`` sees the rows) until an
administrator creates the organization, which adopts them. Audit entries of namespaces that nothing else names
and no account owns (left by accounts deleted before this revision) are archived.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import dockyard.models.base

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_NAMESPACE_TABLES = (
    "repositories",
    "webhooks",
    "trusted_keys",
    "trusted_identities",
    "trust_policies",
    "namespace_signing_keys",
)
_UTC = dockyard.models.base.UTCDateTime(timezone=True)
_accounts = sa.table(
    "accounts",
    sa.column("id", sa.BigInteger),
    sa.column("name", sa.String),
    sa.column("kind", sa.String),
    sa.column("is_admin", sa.Boolean),
    sa.column("disabled", sa.Boolean),
    sa.column("full_name", sa.String),
    sa.column("company", sa.String),
    sa.column("location", sa.String),
    sa.column("profile_url", sa.String),
    sa.column("description", sa.String),
    sa.column("created_at", _UTC),
)
_members = sa.table(
    "org_members",
    sa.column("org_id", sa.BigInteger),
    sa.column("user_id", sa.BigInteger),
    sa.column("role", sa.String),
    sa.column("created_at", _UTC),
)
_audit = sa.table(
    "audit_log",
    sa.column("namespace", sa.String),
    sa.column("action", sa.String),
    sa.column("actor", sa.String),
    sa.column("target", sa.String),
    sa.column("source_ip", sa.String),
    sa.column("data", sa.Text),
    sa.column("created_at", _UTC),
    sa.column("archived_at", _UTC),
)


def upgrade() -> None:
    op.create_table(
        "reserved_names",
        sa.Column(
            "name",
            sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql"),
            nullable=False,
        ),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("created_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reserved_until", dockyard.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reserved_names")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("archived_at", dockyard.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("archived_account_id", sa.BigInteger(), nullable=True))
    _adopt_namespaces_without_account(op.get_bind())


def _adopt_namespaces_without_account(bind: sa.engine.Connection) -> None:
    now = datetime.now(UTC)
    accounts = {name for (name,) in bind.execute(sa.select(_accounts.c.name))}
    named: set[str] = set()
    for table in _NAMESPACE_TABLES:
        column = sa.table(table, sa.column("namespace", sa.String)).c.namespace
        named |= {ns for (ns,) in bind.execute(sa.select(column).distinct()) if ns is not None}
    orphans = sorted(named - accounts)
    admin = bind.execute(
        sa.select(_accounts.c.id, _accounts.c.name)
        .where(_accounts.c.kind == "user", _accounts.c.is_admin == sa.true())
        .order_by(_accounts.c.id)
        .limit(1)
    ).first()
    if admin is not None:
        for namespace in orphans:
            org_id = bind.execute(
                sa.insert(_accounts)
                .values(
                    name=namespace,
                    kind="org",
                    is_admin=False,
                    disabled=False,
                    full_name="",
                    company="",
                    location="",
                    profile_url="",
                    description="",
                    created_at=now,
                )
                .returning(_accounts.c.id)
            ).scalar_one()
            bind.execute(sa.insert(_members).values(org_id=org_id, user_id=admin.id, role="owner", created_at=now))
            bind.execute(
                sa.insert(_audit).values(
                    namespace=namespace,
                    action="org.create",
                    actor="dockyard",
                    target=namespace,
                    source_ip="",
                    data=json.dumps(
                        {"owner": admin.name, "reason": "migration: namespace without account"}, separators=(",", ":")
                    ),
                    created_at=now,
                )
            )
    # Audit entries nobody may read any more (their account was deleted before names were reserved): archived, so
    # that a new account of that name never sees them.
    leftovers = sa.select(_audit.c.namespace).distinct().where(_audit.c.archived_at.is_(None))
    for (namespace,) in bind.execute(leftovers).all():
        if namespace not in accounts and namespace not in named:
            bind.execute(sa.update(_audit).where(_audit.c.namespace == namespace).values(archived_at=now))


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("archived_account_id")
        batch_op.drop_column("archived_at")
    op.drop_table("reserved_names")
