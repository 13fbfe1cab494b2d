"""Shapes shared by the account routes of the Hub API (users, access tokens, organizations, teams, robots,
collaborators): the constrained name types of paths and bodies, and the response models that more than one
route module returns (user profiles, organizations, repository grants) with their conversions from the account
services' views."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from dockyard.accounts.names import ACCOUNT_NAME_RE, MAX_TEXT_LENGTH
from dockyard.accounts.snapshots import OrgInfo, RepositoryGrant, UserInfo
from dockyard.authz.permissions import Level
from dockyard.authz.principal import Principal
from dockyard.http.api.schemas.common import MAX_NAME_LENGTH, PRINTABLE, PRINTABLE_OR_EMPTY

AccountPath = Annotated[
    str, Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE, description="user or organization name")
]
NamePath = Annotated[str, Path(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)]
AccountName = Annotated[
    str,
    Field(
        min_length=4,
        max_length=30,
        pattern=ACCOUNT_NAME_RE.pattern,
        description="4 to 30 lowercase letters and digits",
        examples=["alice"],
    ),
]
ExistingName = Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)]
Text = Annotated[str, Field(max_length=MAX_TEXT_LENGTH, pattern=PRINTABLE_OR_EMPTY)]
Permission = Literal["read", "write", "admin"]


class UserProfile(BaseModel):
    """A user's public profile (Docker Hub's shape), read from a ``UserInfo`` with ``model_validate``."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str = Field(validation_alias=AliasChoices("username", "name"))
    full_name: str
    location: str
    company: str
    profile_url: str
    date_joined: datetime = Field(validation_alias=AliasChoices("date_joined", "created_at"))
    gravatar_url: str = ""
    type: Literal["User"] = "User"


class UserAccount(UserProfile):
    """The profile as the user themselves and site administrators see it."""

    email: str | None
    is_admin: bool
    is_active: bool = Field(validation_alias=AliasChoices("is_active", "enabled"))


def may_see_account(who: Principal, info: UserInfo) -> bool:
    return who.superuser or (who.kind == "user" and who.account_id == info.id)


def user_profile(info: UserInfo) -> UserProfile:
    return UserProfile.model_validate(info)


def user_account(info: UserInfo) -> UserAccount:
    return UserAccount.model_validate(info)


class Organization(BaseModel):
    """An organization's profile (Docker Hub's shape), read from an ``OrgInfo`` with ``model_validate``; the
    validation context's ``server_default_private`` fills ``default_private`` when the organization has none."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    orgname: str = Field(validation_alias=AliasChoices("orgname", "name"))
    full_name: str
    company: str
    location: str
    profile_url: str
    description: str
    date_joined: datetime = Field(validation_alias=AliasChoices("date_joined", "created_at"))
    gravatar_url: str = ""
    type: Literal["Organization"] = "Organization"
    default_private: bool = Field(description="whether repositories created in the organization start private")

    @field_validator("default_private", mode="before")
    @classmethod
    def _server_default(cls, value: bool | None, info: ValidationInfo) -> bool | None:
        if value is None and info.context is not None:
            return bool(info.context["server_default_private"])
        return value


class UserOrganization(Organization):
    """An organization the user belongs to, with the user's role in it."""

    role: Literal["owner", "member"]


def organization(info: OrgInfo, server_default_private: bool) -> Organization:
    return Organization.model_validate(info, context={"server_default_private": server_default_private})


class RepositoryPermission(BaseModel):
    """A level on one repository (full name ``namespace/name``)."""

    repository: Annotated[str, Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=PRINTABLE)]
    permission: Permission


def repository_permission(grant: RepositoryGrant) -> RepositoryPermission:
    return RepositoryPermission(repository=grant.repository, permission=level_label(grant.level))


def level_label(level: Level) -> Permission:
    labels: dict[Level, Permission] = {Level.READ: "read", Level.WRITE: "write", Level.ADMIN: "admin"}
    return labels[level]
