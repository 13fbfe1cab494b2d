"""Schemas of the automated-build routes: the source link, build rules (Docker Hub's field names: ``source_type``,
``source_name``, ``tag``, ``dockerfile``, ``build_context``, ``autobuild``; Dockyard's ``build_cache``,
``also_latest``, ``network``, ``build_args``), builds and trigger answers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from dockyard.builds.manage import LinkView, RuleView
from dockyard.builds.records import BuildView
from dockyard.http.api.schemas.common import NO_NUL, PRINTABLE, Timestamp

SourceType = Literal["Branch", "Tag"]


class CreateLink(BaseModel):
    url: str = Field(
        min_length=1,
        max_length=2048,
        pattern=PRINTABLE,
        description="the git remote: https://…, http://…, ssh://…, git://… or user@host:path",
    )
    https_username: str | None = Field(default=None, max_length=255, pattern=PRINTABLE)
    https_token: str | None = Field(
        default=None, max_length=4096, pattern=PRINTABLE, description="for HTTPS remotes; stored sealed, never shown"
    )
    ssh_known_hosts: str | None = Field(
        default=None, max_length=16384, pattern=NO_NUL, description="known_hosts lines pinning an SSH remote's key"
    )
    poll_interval_seconds: int = Field(default=0, ge=0, le=7 * 86400, description="0: not polled; else ≥ 60")


class Link(BaseModel):
    repository: str
    url: str
    auth: Literal["none", "https", "ssh"]
    https_username: str | None
    has_https_token: bool
    ssh_public_key: str | None = Field(description="the deploy key to install on the git host (SSH links)")
    ssh_known_hosts: str | None
    poll_interval_seconds: int
    polled_at: Timestamp | None
    created_by: str
    created_at: Timestamp


class CreatedLink(Link):
    webhook_url: str = Field(description="where the git host sends push webhooks")
    webhook_secret: str = Field(description="the secret push webhooks are signed with (shown this once)")
    trigger_url: str = Field(description="Docker Hub's build trigger URL (its token is shown this once)")


class BuildArgIn(BaseModel):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str = Field(default="", max_length=4096, pattern=NO_NUL)
    secret: bool = Field(default=False, description="stored sealed, never shown, never logged")


class BuildArgOut(BaseModel):
    name: str
    value: str | None = Field(description="null for a secret one")
    secret: bool


class CreateRule(BaseModel):
    source_type: SourceType = "Branch"
    source_name: str = Field(
        default="main", min_length=1, max_length=255, pattern=PRINTABLE, description="a name, or /regex/"
    )
    tag: str = Field(
        default="latest", min_length=1, max_length=255, pattern=PRINTABLE, description="template: {sourceref}, {\\1}…"
    )
    dockerfile: str = Field(default="Dockerfile", min_length=1, max_length=1024, pattern=PRINTABLE)
    build_context: str = Field(default="/", min_length=1, max_length=1024, pattern=PRINTABLE)
    build_args: list[BuildArgIn] = Field(default_factory=list, max_length=50)
    autobuild: bool = True
    build_cache: bool = True
    also_latest: bool = Field(default=False, description="also tag latest")
    network: bool = Field(default=False, description="may RUN steps reach the network")


class ReplaceRule(CreateRule):
    build_args: list[BuildArgIn] | None = Field(  # type: ignore[assignment]
        default=None, max_length=50, description="absent or null: the stored build args (secret ones too) stay"
    )


class RuleModel(BaseModel):
    id: str
    source_type: SourceType
    source_name: str
    tag: str
    dockerfile: str
    build_context: str
    build_args: list[BuildArgOut]
    autobuild: bool
    build_cache: bool
    also_latest: bool
    network: bool
    created_at: Timestamp


class RunBuild(BaseModel):
    source_type: SourceType = "Branch"
    source_name: str | None = Field(
        default=None,
        max_length=255,
        pattern=PRINTABLE,
        description="the branch or tag; none: every ref the rules match",
    )
    rule: str | None = Field(default=None, max_length=64, pattern=PRINTABLE, description="only this rule")


class TriggerCall(BaseModel):
    source_type: SourceType | None = None
    source_name: str | None = Field(default=None, max_length=255, pattern=PRINTABLE)
    build: bool | None = None


class BuildModel(BaseModel):
    id: str
    repository: str
    rule: str | None
    source_type: str
    source_name: str
    commit: str | None
    tags: list[str]
    dockerfile: str
    build_context: str
    trigger: str
    actor: str
    state: Literal["queued", "cloning", "building", "pushing", "signing", "succeeded", "failed", "cancelled"]
    digest: str | None
    error: str | None
    created_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    duration_seconds: float | None


class Queued(BaseModel):
    builds: list[str] = Field(description="the ids of the builds queued (or coalesced into a queued build)")


def link_model(view: LinkView) -> Link:
    return Link(
        repository=view.repository,
        url=view.url,
        auth=view.auth,
        https_username=view.https_username,
        has_https_token=view.has_https_token,
        ssh_public_key=view.ssh_public_key,
        ssh_known_hosts=view.ssh_known_hosts,
        poll_interval_seconds=view.poll_interval_seconds,
        polled_at=view.polled_at,
        created_by=view.created_by,
        created_at=view.created_at,
    )


def rule_model(view: RuleView) -> RuleModel:
    return RuleModel(
        id=view.id,
        source_type=view.source_type,
        source_name=view.source_name,
        tag=view.tag,
        dockerfile=view.dockerfile,
        build_context=view.build_context,
        build_args=[BuildArgOut(name=a.name, value=a.value, secret=a.secret) for a in view.build_args],
        autobuild=view.autobuild,
        build_cache=view.build_cache,
        also_latest=view.also_latest,
        network=view.network,
        created_at=view.created_at,
    )


def build_model(view: BuildView) -> BuildModel:
    return BuildModel(
        id=view.id,
        repository=view.repository,
        rule=view.rule,
        source_type=view.source_type,
        source_name=view.ref,
        commit=view.commit,
        tags=list(view.tags),
        dockerfile=view.dockerfile,
        build_context=view.context,
        trigger=view.trigger,
        actor=view.actor,
        state=view.state,
        digest=view.digest,
        error=view.error,
        created_at=view.created_at,
        started_at=view.started_at,
        finished_at=view.finished_at,
        duration_seconds=view.duration_seconds,
    )
