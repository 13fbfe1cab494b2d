"""The one typed Settings object: defaults, a TOML file, then ``DOCKYARD_*`` environment variables.

This is the only module that reads the process environment. Everything else receives a ``Settings``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dockyard.settings_ldap import LdapSettings

MiB = 1024 * 1024
_HOST_PATTERN = re.compile(
    r"^(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\.?$"
)


class SettingsError(Exception):
    """The configuration is invalid; the message says which setting and why."""


class NotificationEndpoint(BaseModel):
    """One distribution-compatible notification endpoint (distribution's ``notifications.endpoints``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
    url: str = Field(min_length=8, max_length=2048, pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)
    events: list[str] = Field(default_factory=lambda: ["push", "tag_deleted", "manifest_deleted", "repository_deleted"])


class Settings(LdapSettings, BaseSettings):
    """Everything Dockyard can be configured with. Defaults work with nothing configured. The LDAP sign-in
    settings (``ldap_*``) are declared in ``settings_ldap``."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    data_dir: Path = Path("data")
    database_url: str = ""
    storage_url: str = ""
    open: bool = False
    workers: int = Field(default=0, ge=0, le=64)  # server processes; 0: one per CPU core (at most 8)
    base_url: str = ""  # production: set it, else the token realm follows the client's Host header
    # HTTPS: the certificate chain and its private key (PEM files, both or neither); reloaded when they change
    # (dockyard.http.tls). Relative paths are taken from the current directory.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "info"
    access_log: bool = True
    max_manifest_bytes: int = Field(default=4 * MiB, ge=64 * 1024)
    chunk_min_length: int = Field(default=MiB, ge=0)  # advertised as OCI-Chunk-Min-Length; 0: not advertised
    upload_write_batch_bytes: int = Field(default=4 * MiB, ge=64 * 1024)
    upload_lease_seconds: int = Field(default=30, ge=3, le=3600)
    upload_expiry_seconds: int = Field(default=24 * 3600, ge=1)  # an upload session idle this long is removed
    upload_sessions_per_account: int = Field(default=100, ge=1)  # open sessions one account may have at once…
    upload_sessions_per_repository: int = Field(default=20, ge=1)  # …and one repository (more: 429)
    max_request_body_bytes: int = Field(default=MiB, ge=1024)  # every route but blob uploads and manifests (413)
    max_request_header_bytes: int = Field(default=64 * 1024, ge=8 * 1024)  # request line and headers (431)
    # An idle keep-alive connection is closed after this long. Not uvicorn's 5 s: a client that sends its next request
    # just as the server closes the connection sees it drop unanswered (and may not resend a POST or PATCH), and
    # clients keep idle connections far longer (Go's default transport: 90 s). 75 s is nginx's default.
    keep_alive_seconds: int = Field(default=75, ge=1, le=3600)
    catalog_max_entries: int = Field(default=1000, ge=1)
    tags_max_entries: int = Field(default=10000, ge=1)
    db_pool_size: int = Field(default=8, ge=1)
    fsync: bool = True
    # SQLite only. "normal" (WAL + synchronous=NORMAL): an answered write survives a crash of the process or of
    # the whole process tree; a power cut may lose the last transactions (never corrupts). "full" also fsyncs the
    # WAL at every commit, so an answered write survives a power cut too, at an fsync per write.
    sqlite_synchronous: Literal["normal", "full"] = "normal"
    gc_grace_seconds: int = Field(default=24 * 3600, ge=0)
    gc_interval_seconds: int = Field(default=3600, ge=0)  # 0: no scheduled collection
    gc_scan_window: int = Field(default=5000, ge=10, le=100_000)  # rows examined per GC statement
    gc_untagged_manifests: bool = True
    retention_interval_seconds: int = Field(default=24 * 3600, ge=0)  # scheduled retention runs; 0: on demand only
    # Organization invites (dockyard.accounts.invites; docs/auth.md): an invitation link is valid this long
    invite_expiry_days: int = Field(default=7, ge=1, le=365)
    # E-mail (invitation links) through an SMTP server; smtp_host "" (the default): no e-mail is sent, and the
    # invitation link is shown to the inviting owner instead. smtp_starttls upgrades the connection with STARTTLS
    # (certificate verified) before anything else is said; smtp_username and smtp_password, when set, sign in.
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_from: str = "dockyard@localhost"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    # Accounts and authentication
    secret_key: str = ""  # encrypts token-signing keys in the DB; every replica needs the same one
    admin_username: str = "admin"
    admin_password: str = ""  # first start only; generated and printed once when empty
    # Self sign-up on the web hub's /signup (off: only site administrators create users)
    allow_signup: bool = False
    # argon2id cost of new password hashes (dockyard.auth.secrets): RFC 9106's second recommended set by default
    # (64 MiB, 3 passes, 4 lanes: ~0.2 s of CPU per sign-in). A stored hash keeps the cost it was made with.
    password_hash_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    password_hash_time_cost: int = Field(default=3, ge=1, le=100)
    password_hash_parallelism: int = Field(default=4, ge=1, le=64)
    default_private: bool = True  # visibility of a repository created by a push (per namespace overridable)
    # A deleted account's name stays reserved this long before anyone may claim it (0: free at once).
    deleted_name_grace_days: int = Field(default=30, ge=0, le=3650)
    token_service: str = ""  # the JWT audience / "service"; default: the Host the client used
    token_issuer: str = "dockyard"  # noqa: S105 (an issuer name, not a secret)
    token_lifetime_seconds: int = Field(default=300, ge=60, le=86400)
    refresh_token_lifetime_seconds: int = Field(default=30 * 86400, ge=300)
    # A refresh grant returns a new refresh token and reuse of the old one revokes its family (OAuth 2.1). Off by
    # default: Docker's daemon and containers/image keep presenting the refresh token `docker login` stored.
    refresh_token_rotation: bool = False
    api_token_lifetime_seconds: int = Field(default=600, ge=60, le=86400)
    # Web hub sign-ins (dockyard.auth.web_sessions): a session ends after this long unused, and after the absolute
    # lifetime however busy it is.
    web_session_idle_seconds: int = Field(default=8 * 3600, ge=60)
    web_session_lifetime_seconds: int = Field(default=7 * 86400, ge=300)
    # Single sign-on through an OpenID provider (dockyard.auth.oidc; docs/auth.md "Single sign-on: OIDC"):
    # off while oidc_issuer is "". The issuer's discovery document (/.well-known/openid-configuration) names the
    # endpoints and keys; the client is registered there with the redirect URI <base_url>/login/oidc/callback.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_provider_name: str = Field(default="single sign-on", min_length=1, max_length=64)  # "Sign in with …"
    oidc_scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    oidc_username_claim: str = "preferred_username"  # the claim a new user's account name is made from
    oidc_groups_claim: str = "groups"  # "": no group sync
    # A user the provider knows but Dockyard does not: created at first sign-in, or refused (then an administrator
    # creates the account first, with the same name; the first sign-in links it).
    oidc_auto_create_users: bool = True
    # Groups → teams: a group named "org/team" is that team; entries "group=org/team" map other group names.
    # Memberships a group gave are taken away at the first sign-in without the group.
    oidc_team_mapping: list[str] = Field(default_factory=list)
    oidc_timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # each request to the provider
    # Brute-force protection (dockyard.auth.throttle): password failures back off per (account, client address)
    # and per client address; never a lock-out of the account everywhere.
    login_max_failures_per_user: int = Field(default=5, ge=1)  # one account from one address, then backoff
    login_max_failures_per_ip: int = Field(default=100, ge=1)  # one address, all accounts, then backoff
    login_backoff_seconds: float = Field(default=2.0, gt=0, le=3600)  # first delay; doubles per further failure…
    login_backoff_max_seconds: int = Field(default=900, ge=1)  # …up to this
    login_failure_window_seconds: int = Field(default=900, ge=1)  # counts are forgotten after this long quiet
    max_concurrent_password_checks: int = Field(default=0, ge=0, le=1024)  # argon2 at once per process; 0: auto
    password_check_wait_seconds: float = Field(default=1.0, ge=0, le=60)  # wait for a slot, then 429
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR ranges); the client is
    # the right-most address in X-Forwarded-For that is not one of them. None: the TCP peer is the client.
    trusted_proxies: list[str] = Field(default_factory=list)
    credential_cache_seconds: int = Field(default=30, ge=0, le=300)  # verified Basic credentials on /v2
    pull_stats_flush_seconds: float = Field(default=5.0, gt=0)
    # Docker Hub's pull rate limits (dockyard.repos.ratelimits; docs/lifecycle.md): manifest GETs per window, per
    # client address when anonymous, per account when authenticated; 0 = no limit (the default). Docker Hub:
    # 100 anonymous / 200 personal per 21600 s (6 h).
    rate_limit_anonymous: int = Field(default=0, ge=0)
    rate_limit_authenticated: int = Field(default=0, ge=0)
    rate_limit_window_seconds: int = Field(default=21600, ge=1, le=30 * 24 * 3600)
    # "org=limit" entries: the members and robots of the organization get that limit if it is more generous than
    # rate_limit_authenticated (0 = unlimited). Robots ("org+name") listed in rate_limit_unlimited_robots pull
    # without a limit.
    rate_limit_organizations: list[str] = Field(default_factory=list)
    rate_limit_unlimited_robots: list[str] = Field(default_factory=list)
    rate_limit_flush_seconds: float = Field(default=1.0, gt=0, le=60)  # counts shared between replicas this often
    # Background jobs (dockyard.jobs): run inside `dockyard serve` unless disabled; `dockyard worker` always runs them
    jobs_enabled: bool = True
    jobs_concurrency: int = Field(default=8, ge=1, le=256)  # handlers running at once per process
    jobs_poll_seconds: float = Field(default=1.0, gt=0, le=60)  # how often an idle runner looks for due jobs
    jobs_lease_seconds: int = Field(default=60, ge=1, le=3600)  # a dead runner's jobs are picked up after this
    # A stopping server lets its running jobs finish for this long, then hands them back to the queue (their next
    # attempt runs elsewhere or after the restart); within the supervisor's stop timeout.
    jobs_stop_grace_seconds: float = Field(default=30.0, ge=0, le=60)
    jobs_retention_seconds: int = Field(default=7 * 24 * 3600, ge=60)  # finished jobs are kept this long
    jobs_backoff_base_seconds: float = Field(default=2.0, gt=0)  # retry delay: full jitter over base·2^(n-1)…
    jobs_backoff_cap_seconds: float = Field(default=3600.0, gt=0)  # …capped here
    jobs_handler_modules: list[str] = Field(default_factory=list)  # extra modules registering handlers (plugins)
    # Pull-through cache (dockyard.proxy; docs/proxy-and-replication.md). mirror_namespace: the proxy namespace
    # that serves docker.io when Dockyard is a registry mirror (a pull of a name no local account owns, or of a
    # `library/` repository not stored locally, is served from it); "": no mirror mode.
    mirror_namespace: str = ""
    proxy_upstream_timeout_seconds: float = Field(default=30.0, gt=0, le=600)  # connect/read wait on an upstream
    proxy_fetch_lease_seconds: int = Field(default=30, ge=3, le=3600)  # a dead fetcher's blob is fetched again after
    # Replication to and from other registries (dockyard.replication; docs/proxy-and-replication.md): hosts,
    # addresses or CIDR ranges a rule's remote may be although the SSRF guard refuses them by default (as
    # webhook_allowed_hosts); how often a failed run is tried again and how many times; how often schedules are checked
    replication_allowed_hosts: list[str] = Field(default_factory=list)
    replication_retry_seconds: float = Field(default=60.0, ge=0, le=86400)
    replication_max_attempts: int = Field(default=5, ge=1, le=100)
    replication_schedule_check_seconds: float = Field(default=30.0, gt=0, le=3600)
    # Index the layers of every pushed image in the background (dockyard.layers); else on first look inside
    layer_index_on_push: bool = True
    # Compute the SBOM inventory of every pushed image in the background (dockyard.inventory); else on first request
    inventory_on_push: bool = True
    # Attach each pushed image platform's SPDX 2.3 SBOM to it as an OCI referrer once its inventory is computed
    sbom_referrers: bool = True
    # Webhooks (dockyard.webhooks): hosts, addresses or CIDR ranges deliveries may reach although the SSRF guard
    # refuses them by default (loopback, private, link-local…); "ci.internal", "*.corp.example", "10.1.0.0/16"
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)  # waiting for a receiver's response
    webhook_retry_horizon_seconds: int = Field(default=24 * 3600, ge=60)  # retries stop this long after the event
    webhook_disable_after_seconds: int = Field(default=3 * 24 * 3600, ge=60)  # failing this long and…
    webhook_disable_after_failures: int = Field(default=20, ge=1)  # …this many deliveries in a row: disabled
    webhook_callback_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)  # a delivery's callback_url expires
    webhook_dispatch_poll_seconds: float = Field(default=0.5, gt=0, le=60)  # new events are looked for this often
    pull_events: bool = False  # aggregated "pull" webhook events (one per repository and tag per flush)
    # Distribution-style notification endpoints ([[notifications.endpoints]] in the TOML file, or JSON in
    # DOCKYARD_NOTIFICATIONS_ENDPOINTS): every repository's events, in distribution's envelope.
    notifications_endpoints: list[NotificationEndpoint] = Field(default_factory=list)
    events_retention_seconds: int = Field(default=30 * 24 * 3600, ge=3600)  # dispatched outbox events kept so long
    # /metrics: a bearer token it requires, and/or an address ("host:port") of a listener of its own — then the
    # main port does not serve it
    metrics_token: str = ""
    metrics_address: str = ""
    # Image signing: a Sigstore trusted root (trusted_root.json: Fulcio CAs, Rekor and CT log keys, TSAs) that
    # keyless signatures are verified against, offline. None: keyless signatures are never "verified".
    sigstore_trusted_root: Path | None = None
    # Vulnerability scanning (dockyard.vulns, docs/scanning.md): OSV export URLs (e.g. a mirror of OSV's
    # per-ecosystem all.zip) synced every vulndb_sync_interval_seconds. Empty (the default): no sync, nothing is
    # fetched — air-gapped servers load data with `dockyard vulndb import PATH`.
    vulndb_sources: list[str] = Field(default_factory=list)
    # Air-gapped: the scheduled sync never runs, whatever vulndb_sources lists (a server cut off for a while keeps
    # its sources configured); data comes only from `dockyard vulndb import PATH`
    vulndb_air_gapped: bool = False
    # Apply OpenVEX documents attached to images as referrers (by whoever may push to the repository) to their
    # reports and pull decisions; off: only the VEX a namespace's owners upload counts
    vex_referrers: bool = True
    vulndb_sync_interval_seconds: int = Field(default=6 * 3600, ge=1)
    vulndb_sync_timeout_seconds: float = Field(default=600.0, gt=0)
    # Where scans get an image's packages: "" the SBOM inventory (dockyard.inventory); else "module:factory",
    # factory(settings, db) -> dockyard.vulns.scanner's InventorySource (tests hand fixture packages this way).
    vulns_inventory_source: str = ""
    # Build executor (dockyard.builds.buildah, docs/builds.md "Executor and sandbox"): where builds check out
    # source and keep their per-build buildah storage (default <data_dir>/builds; the layer caches live under
    # its cache/), buildah's storage driver ("vfs" needs no kernel support; "overlay" is faster where it
    # works), how limits are enforced ("auto": cgroup v2, else v1, else rlimits) and the cgroup builds go under.
    build_work_dir: Path | None = None
    build_storage_driver: Literal["vfs", "overlay"] = "vfs"
    build_sandbox: Literal["auto", "cgroup2", "cgroup1", "rlimits"] = "auto"
    build_cgroup_parent: str = Field(default="dockyard-builds", pattern=r"^[A-Za-z0-9._-]{1,64}$")

    # Automated builds (dockyard.builds, docs/builds.md). The executor: "module:Class", constructed with the settings.
    build_executor: str = "dockyard.builds.buildah:BuildahExecutor"
    build_registry_url: str = ""  # where builders reach /v2; default base_url, else this server's listener
    build_wall_seconds: float = Field(default=3600.0, gt=0, le=86400)  # a build's time limit (its token lives longer)
    build_poll_check_seconds: int = Field(default=60, ge=5)  # how often links due for polling are looked for
    build_namespace_concurrency: int = Field(default=0, ge=0)  # builds of one namespace running at once; 0: no limit

    @field_validator("notifications_endpoints", mode="before")
    @classmethod
    def _endpoints_json(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else []
            except ValueError as exc:
                raise ValueError("must be a JSON list of {name, url, headers, events}") from exc
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        allowed = {"critical", "error", "warning", "info", "debug"}
        if value.lower() not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value.lower()

    @field_validator("jobs_handler_modules", mode="before")
    @classmethod
    def _handler_modules(cls, value: Any) -> Any:
        # From the environment: a comma-separated list.
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("vulndb_sources", mode="before")
    @classmethod
    def _vulndb_sources_list(cls, value: Any) -> Any:
        # From the environment: a comma-separated list.
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("vulndb_sources")
    @classmethod
    def _vulndb_sources(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not entry.startswith(("http://", "https://")):
                raise ValueError(f"{entry!r}: vulnerability data sources are http(s) URLs")
        return value

    @field_validator("webhook_allowed_hosts", "replication_allowed_hosts", mode="before")
    @classmethod
    def _webhook_allowed_hosts_list(cls, value: Any) -> Any:
        # From the environment: a comma-separated list.
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("webhook_allowed_hosts")
    @classmethod
    def _webhook_allowed_hosts(cls, value: list[str]) -> list[str]:
        entries = [entry.strip().lower() for entry in value if entry.strip()]
        for entry in entries:
            if "/" in entry or ":" in entry or entry.replace(".", "").isdigit():
                try:
                    ipaddress.ip_network(entry.strip("[]"), strict=False)
                except ValueError:
                    raise ValueError(f"{entry!r} is not a valid IP address or CIDR range") from None
            elif not _HOST_PATTERN.match(entry):
                raise ValueError(f"{entry!r} is not a host name (or *.domain), IP address or CIDR range")
        return entries

    @field_validator("metrics_address")
    @classmethod
    def _metrics_address(cls, value: str) -> str:
        if value:
            split_address(value)
        return value

    @field_validator("rate_limit_organizations", "rate_limit_unlimited_robots", mode="before")
    @classmethod
    def _rate_limit_lists(cls, value: Any) -> Any:
        # From the environment: a comma-separated list.
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("rate_limit_organizations")
    @classmethod
    def _rate_limit_organizations(cls, value: list[str]) -> list[str]:
        for entry in value:
            org, sep, limit = entry.partition("=")
            if not sep or not org.strip() or not limit.strip().isdigit():
                raise ValueError(f"{entry!r} is not organization=limit (a whole number, 0 for unlimited)")
        return [entry.replace(" ", "") for entry in value]

    @property
    def rate_limit_overrides(self) -> dict[str, int]:
        """``rate_limit_organizations`` as organization → limit (0: unlimited)."""
        return {org: int(limit) for org, _, limit in (entry.partition("=") for entry in self.rate_limit_organizations)}

    @field_validator("oidc_scopes", "oidc_team_mapping", mode="before")
    @classmethod
    def _oidc_lists(cls, value: Any) -> Any:
        # From the environment: a comma-separated list (scopes also space-separated, as OAuth writes them).
        if isinstance(value, str):
            return [entry.strip() for entry in re.split(r"[,\s]+" if "=" not in value else ",", value) if entry.strip()]
        return value

    @field_validator("oidc_issuer")
    @classmethod
    def _oidc_issuer(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the provider's http(s) URL")
        return value

    @field_validator("oidc_team_mapping")
    @classmethod
    def _oidc_team_mapping(cls, value: list[str]) -> list[str]:
        for entry in value:
            group, sep, team = entry.partition("=")
            org, slash, name = team.strip().partition("/")
            if not sep or not group.strip() or not slash or not org or not name:
                raise ValueError(f"{entry!r} is not group=org/team")
        return [entry.strip() for entry in value]

    @model_validator(mode="after")
    def _oidc_client(self) -> Settings:
        if self.oidc_issuer and not self.oidc_client_id:
            raise ValueError("oidc_client_id is needed with oidc_issuer")
        if self.oidc_issuer and "openid" not in self.oidc_scopes:
            raise ValueError("oidc_scopes must include openid")
        return self

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer)

    @property
    def oidc_team_map(self) -> dict[str, list[str]]:
        """``oidc_team_mapping`` as group → the "org/team" names it gives."""
        out: dict[str, list[str]] = {}
        for group, _, team in (entry.partition("=") for entry in self.oidc_team_mapping):
            out.setdefault(group.strip(), []).append(team.strip())
        return out

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _trusted_proxies_list(cls, value: Any) -> Any:
        # From the environment: a comma-separated list.
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, value: list[str]) -> list[str]:
        out = []
        for entry in value:
            try:
                out.append(str(ipaddress.ip_network(entry.strip().strip("[]"), strict=False)))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address or CIDR range") from None
        return out

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _tls_path(cls, value: Path | None) -> Path | None:
        # Absolute, so that worker processes and reloads read the same files whatever their directory.
        return None if value is None or str(value) == "" else value.expanduser().resolve()

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together: set both (HTTPS) or neither (HTTP)")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if value and not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+asyncpg://")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings merges file, environment and flags itself, in that order of precedence.
        return (init_settings,)

    @property
    def effective_workers(self) -> int:
        return self.workers or max(1, min(os.cpu_count() or 1, 8))

    @property
    def effective_password_checks(self) -> int:
        """Password verifications (argon2) one process runs at once."""
        return self.max_concurrent_password_checks or max(4, 2 * (os.cpu_count() or 1))

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def effective_build_work_dir(self) -> Path:
        return (self.build_work_dir or self.data_dir / "builds").resolve()

    @property
    def effective_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'storage').resolve()}"


def split_address(value: str) -> tuple[str, int]:
    """``host:port`` (``[v6]:port``; an empty host is every interface) as (host, port). Raises ValueError."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError("must be host:port with a port from 1 to 65535")
    return host.removeprefix("[").removesuffix("]"), int(port)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings from the optional TOML file, the environment and explicit overrides.

    Raises SettingsError with a readable message naming each bad setting.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        try:
            with config_file.open("rb") as fh:
                raw = tomllib.load(fh)
        except OSError as exc:
            raise SettingsError(f"cannot read config file {config_file}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {config_file} is not valid TOML: {exc}") from exc
        file_values = _flatten(raw)
    explicit = {k: v for k, v in overrides.items() if v is not None}
    try:
        # Layers, lowest first: the file, the environment, explicit arguments (CLI flags).
        merged = {**file_values, **_env_values(), **explicit}
        return Settings(**merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from exc


def _env_values() -> dict[str, Any]:
    prefix = "DOCKYARD_"
    fields = set(Settings.model_fields)
    values: dict[str, Any] = {}
    for key, value in os.environ.items():
        if key.startswith(prefix):
            name = key[len(prefix) :].lower()
            if name in fields:
                values[name] = value
    return values


def _flatten(raw: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Accept both flat keys and sections: ``[storage] url = …`` becomes ``storage_url``."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}_"))
        else:
            out[name] = value
    return out


SERIALIZED_ENV = "DOCKYARD__SERVE_SETTINGS"
SUPERVISOR_ENV = "DOCKYARD__SUPERVISOR_PID"
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess_metrics(directory: Path) -> None:
    """Make prometheus_client in every worker process share counters through files in ``directory``."""
    os.environ[METRICS_DIR_ENV] = str(directory)


def multiprocess_metrics_dir() -> str | None:
    return os.environ.get(METRICS_DIR_ENV)


def serialize_for_workers(settings: Settings) -> None:
    """Hand the effective settings to server worker processes (they inherit the environment)."""
    os.environ[SERIALIZED_ENV] = settings.model_dump_json()


def mark_supervisor() -> None:
    """Tell the server worker processes (they inherit the environment) which process supervises them."""
    os.environ[SUPERVISOR_ENV] = str(os.getpid())


def supervisor_pid() -> int | None:
    raw = os.environ.get(SUPERVISOR_ENV, "")
    return int(raw) if raw.isdigit() else None


def load_serialized() -> Settings:
    raw = os.environ.get(SERIALIZED_ENV)
    if raw is None:
        return load_settings()
    return Settings.model_validate_json(raw)
