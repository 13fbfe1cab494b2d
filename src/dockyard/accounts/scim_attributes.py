"""SCIM 2.0 User attributes (RFC 7643 §4.1) without I/O: what Dockyard keeps of a SCIM User, reading a User
resource an identity provider sends, the one filter Dockyard evaluates (``userName eq "…"``, and ``externalId eq``:
RFC 7644 §3.4.2.2), applying an RFC 7644 §3.5.2 PatchOp, and the Dockyard account names a ``userName`` may become.

Every refusal is ``Invalid`` whose detail carries the RFC's ``scimType`` (``invalidSyntax``, ``invalidFilter``,
``invalidPath``, ``invalidValue``, ``noTarget``, ``mutability``); the SCIM surface renders it in SCIM's error schema.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dockyard.accounts.names import MAX_TEXT_LENGTH, RESERVED_NAMES, validate_email, validate_text
from dockyard.errors import Invalid

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_USER_NAME = 255
_FILTER = re.compile(r'^\s*(userName|externalId)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_NAME_PART = re.compile(r"[^a-z0-9]")


def scim_invalid(scim_type: str, message: str) -> Invalid:
    """An ``Invalid`` the SCIM surface answers 400 with ``scimType``."""
    return Invalid("request", message, {"scimType": scim_type})


@dataclass(frozen=True, slots=True)
class ScimUserFields:
    """What Dockyard keeps of a SCIM User: ``display_name`` is the account's full name, ``email`` its e-mail
    address (the primary one of ``emails``), ``active`` the opposite of its ``disabled`` flag."""

    user_name: str
    external_id: str | None = None
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    email: str | None = None
    active: bool = True

    @property
    def full_name(self) -> str:
        joined = " ".join(part for part in (self.given_name, self.family_name) if part)
        return self.display_name or joined[:MAX_TEXT_LENGTH]  # the account's column holds that much


def parse_user(body: Any) -> ScimUserFields:
    """A User resource of a POST or PUT (RFC 7644 §3.3, §3.5.1): ``userName`` is required; ``id``, ``meta`` and
    ``groups`` (read-only) are ignored, as are attributes Dockyard does not keep."""
    if not isinstance(body, Mapping):
        raise scim_invalid("invalidSyntax", "the body must be a SCIM User object")
    attributes = {str(key).lower(): value for key, value in body.items()}
    user_name = attributes.get("username")
    if not isinstance(user_name, str) or not user_name.strip():
        raise scim_invalid("invalidValue", "userName is required")
    fields = ScimUserFields(user_name=_user_name(user_name))
    for key, value in attributes.items():
        if key != "username":
            fields = _set(fields, key, value)
    return fields


def parse_filter(text: str) -> tuple[str, str]:
    """``userName eq "…"`` or ``externalId eq "…"`` → (``username`` | ``externalid``, value)."""
    match = _FILTER.match(text)
    if match is None:
        raise scim_invalid(
            "invalidFilter",
            'Dockyard filters on userName eq "…" and externalId eq "…" only',
        )
    value = re.sub(r"\\(.)", r"\1", match.group(2))
    return match.group(1).lower(), value


def apply_patch(fields: ScimUserFields, body: Any) -> ScimUserFields:
    """Apply a PatchOp's ``Operations`` in order (RFC 7644 §3.5.2): ``add`` and ``replace`` with a ``path`` (an
    attribute, ``name.givenName`` and the like, or ``emails[…].value``) or without one (the value is an object of
    attributes, as Entra ID and Okta send); ``remove`` of optional attributes. Booleans given as the strings
    ``"True"``/``"False"`` (Entra ID does) are accepted."""
    if not isinstance(body, Mapping):
        raise scim_invalid("invalidSyntax", "the body must be a PatchOp object")
    operations = body.get("Operations", body.get("operations"))
    if not isinstance(operations, list) or not operations:
        raise scim_invalid("invalidSyntax", "Operations must be a non-empty list")
    for operation in operations:
        if not isinstance(operation, Mapping):
            raise scim_invalid("invalidSyntax", "each operation is an object")
        op = str(operation.get("op", "")).lower()
        path = operation.get("path")
        value = operation.get("value")
        if op not in {"add", "replace", "remove"}:
            raise scim_invalid("invalidSyntax", "op is add, replace or remove")
        if path is not None and not isinstance(path, str):
            raise scim_invalid("invalidPath", "path must be a string")
        if op == "remove":
            if not path:
                raise scim_invalid("noTarget", "remove needs a path")
            fields = _remove(fields, _path(path))
        elif path:
            fields = _set(fields, _path(path), value)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                fields = _set(fields, _path(str(key)), item)
        else:
            raise scim_invalid("invalidValue", "an operation without a path takes an object of attributes")
    return fields


def account_names(user_name: str) -> Iterator[str]:
    """The Dockyard account names a ``userName`` may become, best first: the ``userName`` itself when it follows
    Dockyard's rule (4–30 lowercase letters and digits), else the letters and digits of its part before ``@``;
    then that with four random digits, for when the name is taken."""
    lowered = user_name.strip().lower()
    base = _NAME_PART.sub("", lowered.partition("@")[0])[:30]
    if len(base) < 4:
        base = (base + "user")[:30]
    if base in RESERVED_NAMES:
        base = base + "user"
    yield base
    for _ in range(4):
        yield f"{base[:26]}{secrets.randbelow(10_000):04d}"


# -- attributes ------------------------------------------------------------------------------------------------


def _path(path: str) -> str:
    """An attribute path in lower case, without the core schema's URN prefix (``urn:…:User:userName``)."""
    lowered = path.strip().lower()
    prefix = USER_SCHEMA.lower() + ":"
    return lowered.removeprefix(prefix)


def _set(fields: ScimUserFields, key: str, value: Any) -> ScimUserFields:
    if key in {"schemas", "id", "meta", "groups", "password"}:
        return fields  # read-only here (a password is never set by the provider: users sign in by SSO)
    if key == "username":
        return replace(fields, user_name=_user_name(_string(value, "userName")))
    if key == "externalid":
        return replace(fields, external_id=_text(value, "externalId") or None)
    if key == "displayname":
        return replace(fields, display_name=_text(value, "displayName"))
    if key == "active":
        return replace(fields, active=_boolean(value))
    if key == "name":
        if not isinstance(value, Mapping):
            raise scim_invalid("invalidValue", "name is an object")
        for part, item in value.items():
            fields = _set(fields, f"name.{str(part).lower()}", item)
        return fields
    if key == "name.givenname":
        return replace(fields, given_name=_text(value, "name.givenName"))
    if key == "name.familyname":
        return replace(fields, family_name=_text(value, "name.familyName"))
    if key.startswith("name."):
        return fields  # formatted, middleName, …: derived or not kept
    if key == "emails" or key.startswith(("emails[", "emails.")):
        return replace(fields, email=_email(value))
    return fields  # attributes Dockyard does not keep (title, locale, …) are accepted and dropped


def _remove(fields: ScimUserFields, key: str) -> ScimUserFields:
    if key == "username" or key == "active":
        raise scim_invalid("mutability", f"{key} cannot be removed")
    cleared = {
        "externalid": {"external_id": None},
        "displayname": {"display_name": ""},
        "name": {"given_name": "", "family_name": ""},
        "name.givenname": {"given_name": ""},
        "name.familyname": {"family_name": ""},
    }
    if key in cleared:
        return replace(fields, **cleared[key])  # type: ignore[arg-type]
    if key == "emails" or key.startswith("emails"):
        return replace(fields, email=None)
    return fields


def _user_name(value: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_USER_NAME or any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise scim_invalid("invalidValue", f"userName is 1 to {MAX_USER_NAME} printable characters")
    return value


def _string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise scim_invalid("invalidValue", f"{name} is a string")
    return value


def _text(value: Any, name: str) -> str:
    if value is None:
        return ""
    try:
        return validate_text(_string(value, name), name)
    except Invalid as exc:
        raise scim_invalid("invalidValue", exc.message) from exc


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "false"}:
        return value.lower() == "true"
    raise scim_invalid("invalidValue", "active is a boolean")


def _email(value: Any) -> str | None:
    """The primary (else the first) address of ``emails``, or a single address given by a ``value`` path."""
    if value is None:
        return None
    if isinstance(value, str):
        candidate: Any = value
    elif isinstance(value, Mapping):
        candidate = value.get("value")
    elif isinstance(value, list) and all(isinstance(item, Mapping) for item in value):
        if not value:
            return None
        primary = [item for item in value if item.get("primary") in (True, "true", "True")]
        candidate = (primary or value)[0].get("value")
    else:
        raise scim_invalid("invalidValue", "emails is a list of {value, type, primary} objects")
    if not isinstance(candidate, str):
        raise scim_invalid("invalidValue", "an e-mail's value is a string")
    try:
        return validate_email(candidate)
    except Invalid as exc:
        raise scim_invalid("invalidValue", exc.message) from exc
