"""The audit log: security-relevant actions recorded in the caller's transaction (who, what, target, from where).

Action names follow Docker Hub's audit log (``repo.tag.push``, ``repo.change_privacy``, ``access_token.create``…).
An entry belongs to a namespace; that namespace's owners read it through ``/api/v2/auditlogs/{namespace}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from dockyard.models import AuditEntry
from dockyard.models.base import utcnow

_INSERT = insert(AuditEntry)

ACTION_DESCRIPTIONS = {
    "login.success": "signed in",
    "login.failure": "failed to sign in",
    "repo.create": "created the repository",
    "repo.delete": "deleted the repository",
    "repo.update": "updated the repository",
    "repo.change_privacy": "changed the repository's visibility",
    "repo.tag.push": "pushed a tag",
    "repo.tag.delete": "deleted a tag",
    "repo.manifest.push": "pushed a manifest by digest",
    "repo.manifest.delete": "deleted a manifest",
    "repo.permission.change": "changed a repository permission",
    "access_token.create": "created an access token",
    "access_token.update": "updated an access token",
    "access_token.revoke": "revoked an access token",
    "access_token.delete": "deleted an access token",
    "account.create": "created the account",
    "account.update": "updated the account",
    "account.disable": "disabled the account",
    "account.enable": "enabled the account",
    "account.delete": "deleted the account",
    "account.admin_grant": "made the user a site administrator",
    "account.admin_revoke": "removed the user's site administration",
    "gc.start": "started a garbage collection",
    "job.retry": "retried a dead job",
    "account.password_change": "changed the password",
    "user.revoke_sessions": "signed out every session",
    "user.2fa.enable": "turned on two-factor sign-in",
    "user.2fa.disable": "turned off two-factor sign-in",
    "user.2fa.reset": "reset the user's two-factor sign-in (site administrator)",
    "user.2fa.recovery_codes": "made new two-factor recovery codes",
    "refresh_token.reuse": "reused a rotated refresh token (its family was revoked)",
    "org.create": "created the organization",
    "org.update": "updated the organization",
    "org.delete": "deleted the organization",
    "org.member.add": "added a member",
    "org.member.remove": "removed a member",
    "org.member.role": "changed a member's role",
    "scim.token.create": "created the organization's SCIM token",
    "scim.token.revoke": "revoked the organization's SCIM token",
    "scim.user.create": "provisioned a user through SCIM",
    "scim.user.update": "updated a provisioned user through SCIM",
    "scim.user.deactivate": "deactivated a provisioned user through SCIM",
    "scim.user.activate": "reactivated a provisioned user through SCIM",
    "scim.user.delete": "deleted a provisioned user through SCIM",
    "oidc.user.create": "created the account at its first single sign-on",
    "oidc.user.link": "linked the account to its single sign-on identity",
    "oidc.cli_secret.regenerate": "regenerated the CLI secret",
    "org.invite.create": "invited someone to the organization",
    "org.invite.resend": "sent an invitation again",
    "org.invite.delete": "cancelled an invitation",
    "org.invite.accept": "accepted an invitation",
    "org.invite.decline": "declined an invitation",
    "team.create": "created a team",
    "team.update": "updated a team",
    "team.delete": "deleted a team",
    "team.member.add": "added a team member",
    "team.member.remove": "removed a team member",
    "robot.create": "created a robot account",
    "robot.update": "updated a robot account",
    "robot.delete": "deleted a robot account",
    "robot.secret.regenerate": "regenerated a robot account's secret",
    "signing_key.rotate": "rotated the token signing key",
    "signing.key.add": "trusted a signing key",
    "signing.key.remove": "stopped trusting a signing key",
    "signing.identity.add": "trusted a keyless signing identity",
    "signing.identity.remove": "stopped trusting a keyless signing identity",
    "trust.policy.change": "changed a trust policy",
    "quota.update": "changed a namespace's quota",
    "retention.policy.change": "changed a retention policy",
    "immutability.rules.change": "changed the namespace's tag immutability rules",
    "vulnerability.policy.change": "changed a vulnerability policy",
    "vulnerability.allowlist.add": "allowlisted a vulnerability",
    "vulnerability.allowlist.remove": "removed a vulnerability from the allowlist",
    "vulnerability.vex.add": "uploaded a VEX document",
    "vulnerability.vex.remove": "removed a VEX document",
    "build.link.create": "linked a git repository for automated builds",
    "build.link.delete": "removed the git repository link of automated builds",
    "build.rule.create": "added a build rule",
    "build.rule.delete": "removed a build rule",
    "build.rule.update": "changed a build rule",
    "build.run": "started a build",
    "build.cancel": "cancelled a build",
    "webhook.create": "created a webhook",
    "proxy.create": "made the namespace a proxy of an upstream registry",
    "proxy.delete": "stopped proxying an upstream registry",
    "proxy.update": "changed a proxy's upstream registry, credentials or tag TTL",
    "replication.create": "added a replication rule",
    "replication.delete": "removed a replication rule",
    "replication.run": "started a replication run",
    "webhook.update": "changed a webhook",
    "webhook.delete": "deleted a webhook",
    "webhook.redeliver": "redelivered a webhook delivery",
    "webhook.test": "sent a test delivery",
    "webhook.disable": "a failing webhook was disabled",
}


def audit_row(
    namespace: str,
    action: str,
    *,
    actor: str | None,
    target: str = "",
    source_ip: str = "",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The row of one audit entry, for ``record_audit``/``record_audits``. ``action`` must be a known action."""
    if action not in ACTION_DESCRIPTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return {
        "namespace": namespace,
        "action": action,
        "actor": actor or "",
        "target": target[:512],
        "source_ip": source_ip[:64],
        "data": json.dumps(data or {}, separators=(",", ":"), default=str),
        "created_at": utcnow(),
    }


async def record_audit(
    conn: AsyncConnection,
    namespace: str,
    action: str,
    *,
    actor: str | None,
    target: str = "",
    source_ip: str = "",
    data: dict[str, Any] | None = None,
) -> None:
    """Append one audit entry inside ``conn``'s transaction. ``action`` must be a known action name."""
    await conn.execute(
        _INSERT, audit_row(namespace, action, actor=actor, target=target, source_ip=source_ip, data=data)
    )


def record_audits(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append the ``audit_row``s inside a synchronous unit of work (one statement)."""
    if rows:
        conn.execute(_INSERT, list(rows))
