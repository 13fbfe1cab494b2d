"""The one typed Settings object: defaults, a TOML file, then ``DOCKYARD_*`` environment variables.

This is the only module that reads the process environment. Everything else receives a ``Settings``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

MiB = 1024 * 1024


class SettingsError(Exception):
    """The configuration is invalid; the message says which setting and why."""


class Settings(BaseSettings):
    """Everything Dockyard can be configured with. Defaults work with nothing configured."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", extra="forbid", validate_default=True)

    host: str = "127.0.0.1"
    port: int = Field(default=5000, ge=1, le=65535)
    data_dir: Path = Path("data")
    database_url: str = ""
    storage_url: str = ""
    open: bool = False
    workers: int = Field(default=0, ge=0, le=64)  # server processes; 0: one per CPU core (at most 8)
    base_url: str = ""
    log_level: str = "info"
    access_log: bool = True
    max_manifest_bytes: int = Field(default=4 * MiB, ge=64 * 1024)
    chunk_min_length: int = Field(default=MiB, ge=0)  # advertised as OCI-Chunk-Min-Length; 0: not advertised
    upload_write_batch_bytes: int = Field(default=4 * MiB, ge=64 * 1024)
    upload_lease_seconds: int = Field(default=30, ge=3, le=3600)
    upload_expiry_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    catalog_max_entries: int = Field(default=1000, ge=1)
    tags_max_entries: int = Field(default=10000, ge=1)
    db_pool_size: int = Field(default=8, ge=1)
    fsync: bool = True
    gc_grace_seconds: int = Field(default=24 * 3600, ge=0)
    gc_interval_seconds: int = Field(default=3600, ge=0)  # 0: no scheduled collection
    gc_scan_window: int = Field(default=5000, ge=10, le=100_000)  # rows examined per GC statement
    gc_untagged_manifests: bool = True
    # Accounts and authentication
    secret_key: str = ""  # encrypts token-signing keys in the DB; every replica needs the same one
    admin_username: str = "admin"
    admin_password: str = ""  # first start only; generated and printed once when empty
    default_private: bool = True  # visibility of a repository created by a push (per namespace overridable)
    token_service: str = ""  # the JWT audience / "service"; default: the Host the client used
    token_issuer: str = "dockyard"  # noqa: S105 (an issuer name, not a secret)
    token_lifetime_seconds: int = Field(default=300, ge=60, le=86400)
    refresh_token_lifetime_seconds: int = Field(default=30 * 86400, ge=300)
    api_token_lifetime_seconds: int = Field(default=600, ge=60, le=86400)
    login_failure_window_seconds: int = Field(default=900, ge=1)
    login_max_failures_per_user: int = Field(default=10, ge=1)
    login_max_failures_per_ip: int = Field(default=100, ge=1)
    login_lockout_seconds: int = Field(default=300, ge=1)
    credential_cache_seconds: int = Field(default=30, ge=0, le=300)  # verified Basic credentials on /v2
    pull_stats_flush_seconds: float = Field(default=5.0, gt=0)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        allowed = {"critical", "error", "warning", "info", "debug"}
        if value.lower() not in allowed:
            raise ValueError(f"must be one of {sorted(allowed)}")
        return value.lower()

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
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'dockyard.db').resolve()}"

    @property
    def secret_key_path(self) -> Path:
        return self.data_dir / "secret.key"

    @property
    def effective_storage_url(self) -> str:
        if self.storage_url:
            return self.storage_url
        return f"file://{(self.data_dir / 'storage').resolve()}"


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
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess_metrics(directory: Path) -> None:
    """Make prometheus_client in every worker process share counters through files in ``directory``."""
    os.environ[METRICS_DIR_ENV] = str(directory)


def multiprocess_metrics_dir() -> str | None:
    return os.environ.get(METRICS_DIR_ENV)


def serialize_for_workers(settings: Settings) -> None:
    """Hand the effective settings to server worker processes (they inherit the environment)."""
    os.environ[SERIALIZED_ENV] = settings.model_dump_json()


def load_serialized() -> Settings:
    raw = os.environ.get(SERIALIZED_ENV)
    if raw is None:
        return load_settings()
    return Settings.model_validate_json(raw)
