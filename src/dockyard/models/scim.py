"""SCIM 2.0 provisioning (RFC 7643/7644): each organization's SCIM bearer token, and the users its identity
provider provisioned.

``scim_tokens`` holds one token per organization (rotating replaces it); only the SHA-256 of the secret is stored,
the secret is shown once. ``scim_users`` links a Dockyard user to the organization whose identity provider created
it: the SCIM resource ``id``, the provider's ``userName`` (``user_name_key`` is its lower-case form, unique on the
server: RFC 7643 makes ``userName`` case-insensitive and unique), ``externalId`` and the name parts Dockyard's
account has no column for. ``active`` is the account's ``disabled`` flag, read through the link.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, UTCDateTime, utcnow


class ScimToken(Base):
    __tablename__ = "scim_tokens"

    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_prefix: Mapped[str] = mapped_column(String(16))  # first characters, to recognise the token
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ScimUser(Base):
    __tablename__ = "scim_users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)  # uuid, the SCIM resource id
    org_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"), unique=True)
    user_name: Mapped[str] = mapped_column(String(255))  # as the identity provider wrote it
    user_name_key: Mapped[str] = mapped_column(String(255), unique=True)  # lower case
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    given_name: Mapped[str] = mapped_column(String(255), default="")
    family_name: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
