"""The LDAP sign-in settings (``ldap_*``; docs/auth.md "Single sign-on: LDAP"), a part of ``settings.Settings``
kept in a module of its own so that the one settings module stays readable. Nothing here reads the environment:
``settings.load_settings`` fills these fields as it fills every other (TOML ``[ldap] url = …`` is ``ldap_url``,
``DOCKYARD_LDAP_URL`` too).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

# The placeholders a user filter and a group filter may use (each value escaped for an LDAP filter).
USERNAME_PLACEHOLDER = "{username}"
USER_DN_PLACEHOLDER = "{user_dn}"


class GroupTeam(BaseModel):
    """One ``ldap_group_teams`` entry: members of ``group`` (a DN or a ``cn``, compared without case) are kept in
    the team ``org``/``team``."""

    group: str
    org: str
    team: str


class LdapSettings(BaseModel):
    """LDAP sign-in: off while ``ldap_url`` is empty."""

    # ldap://host[:port] or ldaps://host[:port]; "" (the default): no LDAP
    ldap_url: str = ""
    ldap_start_tls: bool = False  # upgrade an ldap:// connection with StartTLS before binding
    # PEM file of the CA certificates the directory's certificate must chain to (LDAPS and StartTLS); None: the
    # system's trust store. The certificate is always verified, host name included.
    ldap_ca_file: Path | None = None
    ldap_timeout_seconds: float = Field(default=5.0, gt=0, le=120)  # connecting, and waiting for each answer
    # The account that searches for users and groups ("" : an anonymous search). Its password, first found of:
    # ldap_bind_password_sealed (sealed with the server secret by `dockyard ldap seal-password`), the file
    # ldap_bind_password_file, ldap_bind_password (e.g. DOCKYARD_LDAP_BIND_PASSWORD).
    ldap_bind_dn: str = ""
    ldap_bind_password: str = ""
    ldap_bind_password_file: Path | None = None
    ldap_bind_password_sealed: str = ""
    ldap_user_search_base: str = ""  # where users are searched for (subtree)
    # The filter that finds a user; {username} is the name signed in with. "": (<ldap_uid_attribute>={username}).
    ldap_user_filter: str = ""
    ldap_uid_attribute: str = "uid"  # the entry's attribute holding the Dockyard user name
    ldap_email_attribute: str = "mail"  # copied to the account's e-mail at each sign-in ("" : never)
    # Groups: searched under ldap_group_search_base with ldap_group_filter ({user_dn} is the user's DN); with no
    # base, the user entry's ldap_member_of_attribute (e.g. memberOf) lists them.
    ldap_group_search_base: str = ""
    ldap_group_filter: str = "(&(objectClass=groupOfNames)(member={user_dn}))"
    ldap_member_of_attribute: str = "memberOf"
    # "GROUP=ORG/TEAM" entries (GROUP a DN or a cn): at each sign-in the user is put in the teams of their groups
    # and taken out of the listed teams of groups they left. Teams not listed are never touched.
    ldap_group_teams: list[str] = Field(default_factory=list)
    ldap_create_users: bool = True  # a directory user signing in for the first time gets an account; else refused

    @field_validator("ldap_url")
    @classmethod
    def _ldap_url(cls, value: str) -> str:
        if value and not value.lower().startswith(("ldap://", "ldaps://")):
            raise ValueError("must start with ldap:// or ldaps://")
        return value

    @field_validator("ldap_user_filter")
    @classmethod
    def _user_filter(cls, value: str) -> str:
        if value and (USERNAME_PLACEHOLDER not in value or not value.startswith("(")):
            raise ValueError("must be an LDAP filter in parentheses using {username}")
        return value

    @field_validator("ldap_group_filter")
    @classmethod
    def _group_filter(cls, value: str) -> str:
        if USER_DN_PLACEHOLDER not in value or not value.startswith("("):
            raise ValueError("must be an LDAP filter in parentheses using {user_dn}")
        return value

    @field_validator("ldap_group_teams", mode="before")
    @classmethod
    def _group_teams_list(cls, value: Any) -> Any:
        # From the environment: entries separated by ";" (a DN has commas).
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(";") if entry.strip()]
        return value

    @field_validator("ldap_group_teams")
    @classmethod
    def _group_teams(cls, value: list[str]) -> list[str]:
        for entry in value:
            parse_group_team(entry)
        return value

    @model_validator(mode="after")
    def _ldap_complete(self) -> LdapSettings:
        if self.ldap_url and not self.ldap_user_search_base:
            raise ValueError("ldap_url needs ldap_user_search_base (where users are searched for)")
        if self.ldap_start_tls and self.ldap_url.lower().startswith("ldaps://"):
            raise ValueError("ldap_start_tls is for ldap:// URLs (ldaps:// is TLS from the start)")
        return self

    @property
    def ldap_enabled(self) -> bool:
        return bool(self.ldap_url)

    @property
    def effective_ldap_user_filter(self) -> str:
        return self.ldap_user_filter or f"({self.ldap_uid_attribute}={USERNAME_PLACEHOLDER})"

    @property
    def ldap_team_mapping(self) -> list[GroupTeam]:
        return [parse_group_team(entry) for entry in self.ldap_group_teams]


def parse_group_team(entry: str) -> GroupTeam:
    """``GROUP=ORG/TEAM`` (split at the last ``=``: a DN has its own). Raises ValueError."""
    group, sep, target = entry.rpartition("=")
    org, slash, team = target.strip().partition("/")
    if not sep or not group.strip() or not slash or not org or not team or "/" in team:
        raise ValueError(f"{entry!r} is not GROUP=ORG/TEAM (GROUP a DN or a cn)")
    return GroupTeam(group=group.strip().lower(), org=org.lower(), team=team)
