"""Input grammar of account management: user, organization, team and robot names, e-mail addresses, passwords and
profile fields. Each validator returns the value to store or raises ``Invalid`` saying what is wrong.

Users and organizations share one namespace of names (a repository ``ns/name`` belongs to the account ``ns``), so
both follow Docker Hub's user-name rule; names that would collide with a route are reserved.
"""

from __future__ import annotations

import re

from dockyard.errors import Invalid

ACCOUNT_NAME_RE = re.compile(r"^[a-z0-9]{4,30}$")
TEAM_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROBOT_SHORTNAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,254}$")
ROBOT_SEPARATOR = "+"
# Names a namespace may not take: one-component repositories live in ``library``; the others are routes.
RESERVED_NAMES = frozenset({"library", "v2", "api", "token", "_catalog"})
MAX_EMAIL_LENGTH = 320
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # the authenticator refuses longer secrets before hashing them
MAX_TEXT_LENGTH = 255  # profile fields and descriptions (the columns' size)
MAX_ACCOUNT_NAME_LENGTH = 255


def _account_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not ACCOUNT_NAME_RE.match(value):
        raise Invalid(
            "account" if what == "user" else "organization",
            f"{what} names are 4 to 30 characters, lowercase letters and digits only",
            {"name": str(value)[:300]},
        )
    if value in RESERVED_NAMES:
        raise Invalid(
            "account" if what == "user" else "organization", f"the name {value!r} is reserved", {"name": value}
        )
    return value


def validate_username(name: str) -> str:
    """Docker Hub's rule: 4–30 characters, lowercase letters and digits; not a reserved name."""
    return _account_name(name, "user")


def validate_org_name(name: str) -> str:
    """Organizations share the users' namespace of names and their grammar."""
    return _account_name(name, "organization")


def validate_team_name(name: str) -> str:
    if not isinstance(name, str) or not TEAM_NAME_RE.match(name):
        raise Invalid(
            "team",
            "team names are 1 to 64 of [A-Za-z0-9_.-], starting with a letter or digit",
            {"name": str(name)[:300]},
        )
    return name


def validate_robot_shortname(shortname: str) -> str:
    """Quay's rule for the part after ``org+``: a lowercase letter, then lowercase letters, digits, ``_``."""
    if not isinstance(shortname, str) or not ROBOT_SHORTNAME_RE.match(shortname):
        raise Invalid(
            "robot",
            "robot names are 2 to 255 characters: a lowercase letter, then lowercase letters, digits or _",
            {"name": str(shortname)[:300]},
        )
    return shortname


def robot_name(org: str, shortname: str) -> str:
    """The robot's full account name ``org+shortname`` (what it logs in with)."""
    full = f"{org}{ROBOT_SEPARATOR}{validate_robot_shortname(shortname)}"
    if len(full) > MAX_ACCOUNT_NAME_LENGTH:
        raise Invalid("robot", f"robot names are at most {MAX_ACCOUNT_NAME_LENGTH} characters with the organization")
    return full


def split_robot_name(org: str, name: str) -> str:
    """The short name of a robot given as ``shortname`` or ``org+shortname``."""
    if ROBOT_SEPARATOR in name:
        owner, _, short = name.partition(ROBOT_SEPARATOR)
        if owner != org:
            raise Invalid("robot", "the robot belongs to another organization", {"name": name[:300]})
        return short
    return name


def validate_email(email: str) -> str:
    """A sanity check, not RFC 5322: one ``@``, something on each side, a dot in the domain, no spaces."""
    email = email.strip() if isinstance(email, str) else ""
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(email) > MAX_EMAIL_LENGTH
        or any(ch.isspace() or ord(ch) < 32 for ch in email)
    ):
        raise Invalid("account", "invalid e-mail address", {"field": "email"})
    return email


def validate_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid(
            "credentials",
            f"passwords are {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters",
            {"field": "password"},
        )
    return password


def validate_text(value: str, field: str, max_length: int = MAX_TEXT_LENGTH) -> str:
    """A one-line free-text field (full name, company, description): at most ``max_length``, no control chars."""
    if not isinstance(value, str) or len(value) > max_length:
        raise Invalid("request", f"{field} must be at most {max_length} characters", {"field": field})
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Invalid("request", f"{field} must not contain control characters", {"field": field})
    return value.strip()


def validate_profile_url(value: str) -> str:
    """Empty, or an http(s) URL: the UI renders it as a link, so ``javascript:`` and friends are refused."""
    value = validate_text(value, "profile_url")
    if value and not re.match(r"^https?://[^\s/]+", value, re.IGNORECASE):
        raise Invalid("request", "profile_url must be an http:// or https:// URL", {"field": "profile_url"})
    return value
