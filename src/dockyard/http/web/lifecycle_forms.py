"""What the two lifecycle pages (a repository's, a namespace's) share: the quota bar, the pull rate limits a visitor
is under, and the retention policy's rule list edited one rule at a time.

Nothing here decides who may do what: the retention, quota and immutability services ask the authorizer; a rule
added or removed on the page is the whole rule list handed back to ``RetentionService.set_policy`` with the
policy's other options unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from dockyard.authz.principal import Principal
from dockyard.errors import Invalid
from dockyard.http.credentials import client_ip
from dockyard.http.web.context import services_of
from dockyard.http.web.forms import field
from dockyard.http.web.security import Visit
from dockyard.registry.quotas import Usage
from dockyard.repos.retention import PolicyView, RetentionService
from dockyard.repos.retention_rules import TEMPLATES

TEMPLATE_LABELS = {
    "latestPushedK": "keep the N most recently pushed",
    "latestPulledN": "keep the N most recently pulled",
    "nDaysSinceLastPush": "keep those pushed in the last N days",
    "nDaysSinceLastPull": "keep those pulled in the last N days",
    "always": "always keep",
}
assert set(TEMPLATE_LABELS) == set(TEMPLATES)
UNITS = {"MB": 1000**2, "GB": 1000**3, "TB": 1000**4}


@dataclass(frozen=True, slots=True)
class QuotaBar:
    """A namespace's usage against its limits, as the page draws it (``percent`` None: no storage limit)."""

    usage: Usage
    percent: int | None
    soft_bytes: int | None
    over_soft: bool


def quota_bar(usage: Usage) -> QuotaBar:
    limit = usage.storage_limit
    if not limit:
        return QuotaBar(usage, None, None, False)
    soft = limit * usage.soft_percent // 100
    return QuotaBar(usage, min(100, usage.storage_bytes * 100 // limit), soft, usage.storage_bytes >= soft)


@dataclass(frozen=True, slots=True)
class PullLimits:
    """The configured pull rate limits and what the visitor has left in the current window (read-only)."""

    enabled: bool
    anonymous: int
    authenticated: int
    window: int
    limit: int | None  # the visitor's own (None: unlimited)
    remaining: int | None
    source: str


def pull_limits(request: Request, current: Visit) -> PullLimits:
    """Asks the process's limiter without counting (``count=False``: looking is not a pull)."""
    services = services_of(request)
    settings = services.settings
    limiter = services.ratelimits
    anonymous, authenticated = settings.rate_limit_anonymous, settings.rate_limit_authenticated
    window = settings.rate_limit_window_seconds
    if limiter is None:
        return PullLimits(False, anonymous, authenticated, window, None, None, "")
    decision = limiter.take(current.principal, client_ip(request), count=False)
    remaining = decision.remaining if decision.limit is not None else None
    return PullLimits(True, anonymous, authenticated, window, decision.limit, remaining, decision.source)


def whole_number(fields: dict[str, str], name: str, *, required: bool = False) -> int | None:
    """A non-negative integer field (blank: None, unless ``required``)."""
    raw = fields.get(name, "").strip()
    if not raw and not required:
        return None
    if not raw.isdigit():
        raise Invalid("request", f"{name.replace('_', ' ')} must be a whole number")
    return int(raw)


def storage_limit(fields: dict[str, str]) -> int | None:
    """The storage limit in bytes from its number and unit (blank: unlimited)."""
    amount = whole_number(fields, "storage_amount")
    if amount is None:
        return None
    unit = fields.get("storage_unit", "GB")
    if unit not in UNITS:
        raise Invalid("request", f"the unit must be one of {', '.join(UNITS)}")
    return amount * UNITS[unit]


async def change_retention_rules(
    retention: RetentionService,
    actor: Principal,
    namespace: str,
    repo: str | None,
    fields: dict[str, str],
    *,
    source_ip: str,
) -> PolicyView:
    """Apply the form's ``add_rule`` / ``remove_rule`` / ``retention_options`` to the policy of the repository (or
    the namespace, ``repo`` None). A repository following its namespace's policy starts its own from those rules."""
    policy = await retention.get_policy(actor, namespace, repo)
    rules = [rule.as_dict() for rule in policy.rules]
    keep_signed, untagged_days, scheduled = policy.keep_signed, policy.untagged_days, policy.scheduled
    action = fields.get("action", "")
    if action == "add_rule":
        value = whole_number(fields, "value") or 0
        rules.append({"pattern": field(fields, "pattern"), "template": field(fields, "template"), "value": value})
    elif action == "remove_rule":
        index = whole_number(fields, "index", required=True)
        if index is None or index >= len(rules):
            raise Invalid("request", "no such rule")
        del rules[index]
    elif action == "retention_options":
        keep_signed = fields.get("keep_signed") == "on"
        scheduled = fields.get("scheduled") == "on"
        untagged_days = whole_number(fields, "untagged_days")
    else:
        raise Invalid("request", "unknown action")
    return await retention.set_policy(
        actor,
        namespace,
        repo,
        rules=rules,
        keep_signed=keep_signed,
        untagged_days=untagged_days,
        scheduled=scheduled,
        source_ip=source_ip,
    )


RETENTION_ACTIONS = frozenset({"add_rule", "remove_rule", "retention_options"})
