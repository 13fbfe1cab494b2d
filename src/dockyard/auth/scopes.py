"""Docker token-auth scopes: ``repository:samalba/my-app:pull,push`` and ``registry:catalog:*``.

Grammar (distribution ``docs/spec/auth/scope.md``): ``type[(class)]:name:action[,action]*``; the name may
contain a ``host:port/`` prefix, so the actions are split off at the last colon.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockyard.core.names import validate_name
from dockyard.errors import DomainError, Invalid

_TYPE_RE = re.compile(r"^([a-z0-9]+)(?:\([a-z0-9]+\))?$")
_ACTION_RE = re.compile(r"^[a-z]*$|^\*$")
MAX_SCOPES = 32


@dataclass(frozen=True, slots=True)
class ResourceScope:
    type: str  # repository | registry
    name: str
    actions: tuple[str, ...]

    def render(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse_scope(raw: str) -> ResourceScope:
    """Parse one resource scope. Raises Invalid("scope") on anything malformed."""
    type_part, sep, rest = raw.partition(":")
    name, sep2, actions_part = rest.rpartition(":")
    match = _TYPE_RE.match(type_part)
    if not sep or not sep2 or match is None or not name:
        raise Invalid("scope", "malformed scope", {"scope": raw[:200]})
    resource_type = match.group(1)
    actions = tuple(dict.fromkeys(a for a in actions_part.split(",") if a))
    if not all(_ACTION_RE.match(a) for a in actions):
        raise Invalid("scope", "malformed scope actions", {"scope": raw[:200]})
    if resource_type == "repository":
        try:
            validate_name(name)
        except DomainError as exc:
            raise Invalid("scope", "invalid repository name in scope", {"scope": raw[:200]}) from exc
    return ResourceScope(resource_type, name, actions)


def parse_scopes(values: list[str]) -> list[ResourceScope]:
    """Parse scope parameters (each may hold several space-separated scopes, as in the OAuth2 form)."""
    parts = [part for value in values for part in value.split(" ") if part]
    if len(parts) > MAX_SCOPES:
        raise Invalid("scope", f"at most {MAX_SCOPES} scopes per request")
    return [parse_scope(part) for part in parts]
