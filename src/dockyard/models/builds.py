"""Automated builds (``dockyard.builds``): a repository's link to a git remote, its build rules, every build with
its record, the live log lines of running builds, and the base images each rule was last built ``FROM``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from dockyard.models.base import Base, BigId, UTCDateTime, ascii_string, partial_index, utcnow

_QUEUED = text("state = 'queued'")


class BuildLink(Base):
    """The one git remote a repository builds from. Secrets (HTTPS token, SSH private key, the inbound webhook
    secret) are sealed with the server secret; the generic trigger token is stored as its SHA-256."""

    __tablename__ = "build_links"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    repository: Mapped[str] = mapped_column(ascii_string(255), unique=True)  # registry name
    namespace: Mapped[str] = mapped_column(ascii_string(255), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    auth: Mapped[str] = mapped_column(String(16))  # none | https | ssh
    https_username: Mapped[str | None] = mapped_column(String(255), nullable=True)
    https_token: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed
    ssh_private_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # sealed OpenSSH PEM
    ssh_public_key: Mapped[str | None] = mapped_column(Text, nullable=True)  # shown: the deploy key to install
    ssh_known_hosts: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_secret: Mapped[str] = mapped_column(Text)  # sealed: inbound push webhooks are verified with it
    trigger_token: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the trigger URL's token
    poll_interval_seconds: Mapped[int] = mapped_column(Integer, default=0)  # 0: not polled
    polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    polled_refs: Mapped[str] = mapped_column(Text, default="{}")  # JSON ref -> sha seen by the last poll
    created_by: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class BuildRule(Base):
    """One Docker Hub build rule of a link: which refs (a branch or tag name, or ``/regex/``) build into which
    tags (a template with ``{sourceref}`` and ``{\\1}``…``{\\9}``), from which Dockerfile and context."""

    __tablename__ = "build_rules"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("build_links.id", ondelete="CASCADE"), index=True)
    source_type: Mapped[str] = mapped_column(String(8))  # Branch | Tag
    source_name: Mapped[str] = mapped_column(String(255))
    tag: Mapped[str] = mapped_column(String(255))  # the Docker tag template
    dockerfile: Mapped[str] = mapped_column(String(1024), default="Dockerfile")
    context: Mapped[str] = mapped_column(String(1024), default="/")  # Docker Hub's build_context
    build_args: Mapped[str] = mapped_column(Text, default="[]")  # JSON [{name, value (sealed when secret), secret}]
    autobuild: Mapped[bool] = mapped_column(Boolean, default=True)
    build_cache: Mapped[bool] = mapped_column(Boolean, default=True)
    also_latest: Mapped[bool] = mapped_column(Boolean, default=False)
    network: Mapped[bool] = mapped_column(Boolean, default=False)  # may RUN steps reach the network
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Build(Base):
    """One build. ``state``: queued → cloning → building → pushing → succeeded | failed | cancelled.
    ``coalesce_key`` (rule, ref) is unique among queued builds: a new trigger for a queued (rule, ref) updates its
    commit instead of queueing another (the newest commit wins)."""

    __tablename__ = "builds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    repository: Mapped[str] = mapped_column(ascii_string(255))
    namespace: Mapped[str] = mapped_column(ascii_string(255))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("build_rules.id", ondelete="SET NULL"), nullable=True)
    coalesce_key: Mapped[str] = mapped_column(String(600))
    source_type: Mapped[str] = mapped_column(String(8))
    ref: Mapped[str] = mapped_column(String(255))  # the branch or tag name
    commit: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: resolved when it starts
    tags: Mapped[str] = mapped_column(Text)  # JSON list of the tags it pushes
    dockerfile: Mapped[str] = mapped_column(String(1024))
    context: Mapped[str] = mapped_column(String(1024))
    trigger: Mapped[str] = mapped_column(String(32))  # api | webhook:github | trigger | poll | base-image | …
    actor: Mapped[str] = mapped_column(String(255), default="")
    state: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str | None] = mapped_column(String(200), nullable=True)
    error: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    log_digest: Mapped[str | None] = mapped_column(String(200), nullable=True)  # the archived log in storage
    log_size: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_builds_repository", "repository", "id"),
        partial_index("uq_builds_queued", "coalesce_key", unique=True, where=_QUEUED),
        Index("ix_builds_log_digest", "log_digest"),
    )


class BuildLogLine(Base):
    """The log of a build while it runs (and until it is archived to storage): lines in order."""

    __tablename__ = "build_log_lines"

    build_id: Mapped[int] = mapped_column(ForeignKey("builds.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[str] = mapped_column(Text)


class BuildBase(Base):
    """A base image a rule's last build was built ``FROM`` that lives on this Dockyard (``repository``, ``tag``):
    a new image pushed there queues the rule again (base-image links)."""

    __tablename__ = "build_bases"

    rule_id: Mapped[int] = mapped_column(ForeignKey("build_rules.id", ondelete="CASCADE"), primary_key=True)
    repository: Mapped[str] = mapped_column(ascii_string(255), primary_key=True)
    tag: Mapped[str] = mapped_column(String(128), primary_key=True)
    ref: Mapped[str] = mapped_column(String(255))  # the ref and commit the rule last built: rebuilt on a base push
    commit: Mapped[str] = mapped_column(String(64))

    __table_args__ = (Index("ix_build_bases_repository", "repository", "tag"),)
