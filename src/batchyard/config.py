"""Server settings: one validated object from defaults, a TOML file, ``BATCHYARD_*`` variables
and command-line flags (later sources win).

The config file is, in order: ``--config``, ``$BATCHYARD_CONFIG``, ``<data dir>/config.toml``.
Its keys are the field names below; unknown keys are an error so that a typo is not ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_PORT = 8130
DEFAULT_DATA_DIR = Path("~/.batchyard")


class ConfigError(Exception):
    """The settings are not usable; the message says which setting and why."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BATCHYARD_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite in the data dir."
    )
    region: str = Field("us-east-1", pattern=r"^[a-z]{2}(-[a-z]+)+-\d+$")
    account_id: str = Field("000000000000", pattern=r"^\d{12}$")
    log_level: str = "info"
    max_request_bytes: int = Field(4 * 1024 * 1024, ge=1024)
    # Jobs (issue: jobs end to end)
    job_retention_days: float = Field(30.0, gt=0)
    min_attempt_duration_seconds: int = Field(
        60, ge=1, description="AWS's minimum job timeout; tests may lower it."
    )
    terminate_grace_seconds: float = Field(
        10.0, ge=0, description="SIGTERM to SIGKILL delay when a job is terminated."
    )
    job_inherit_environment: list[str] = Field(
        default_factory=lambda: [
            "PATH",
            "HOME",
            "LANG",
            "LC_ALL",
            "TZ",
            "USER",
            "LOGNAME",
            "TMPDIR",
        ],
        description="Variables of the server's environment that jobs inherit; nothing else leaks.",
    )
    log_limit_bytes: int = Field(
        1 << 30, ge=1024, description="Output kept per attempt; more is dropped with a marker."
    )
    run_as: str | None = Field(
        None,
        description="Run local jobs as this user (name or uid) instead of the server's own; "
        "recommended when the server runs as root.",
    )
    enforce_limits: bool = Field(
        True, description="Enforce jobs' memory requests with cgroups where the host allows."
    )
    min_time_limit_seconds: int = Field(
        600, ge=1, description="AWS's minimum jobStateTimeLimitActions maxTimeSeconds."
    )
    # Provider ray (extra [ray]; docs/ray.md)
    ray_clusters: dict[str, str] = Field(
        default_factory=dict,
        description="Named Ray clusters: name -> address; a compute environment's tag "
        "batchyard:ray-address may name one.",
    )
    ray_namespace: str | None = Field(
        None, description="Ray namespace of this deployment's supervisors; default: per store."
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser().absolute()

    @field_validator("log_level")
    @classmethod
    def _level(cls, v: str) -> str:
        v = v.lower()
        if v not in {"critical", "error", "warning", "info", "debug"}:
            raise ValueError("must be one of critical, error, warning, info, debug")
        return v

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'batchyard.db'}"

    @property
    def endpoint(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


class _FileSource(PydanticBaseSettingsSource):
    """The lowest-priority source: the TOML file chosen by :func:`load_settings`."""

    data: ClassVar[dict[str, Any]] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def _config_path(explicit: Path | None, data_dir: Path | None) -> tuple[Path | None, bool]:
    """The config file to read, and whether it must exist (it must when named explicitly)."""
    if explicit is not None:
        return explicit.expanduser(), True
    env = os.environ.get("BATCHYARD_CONFIG")
    if env:
        return Path(env).expanduser(), True
    base = data_dir or Path(os.environ.get("BATCHYARD_DATA_DIR", str(DEFAULT_DATA_DIR)))
    return base.expanduser() / "config.toml", False


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings; ``overrides`` (flags) win over the environment and the file.

    Raises :class:`ConfigError` with a readable message instead of pydantic's traceback.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    path, required = _config_path(config_file, overrides.get("data_dir"))
    data: ClassVar[dict[str, Any]] = {}
    if path is not None and (required or path.exists()):
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"config file {path} cannot be read: {e}") from None
    _FileSource.data = data
    try:
        return Settings(**overrides)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in e.errors()
        )
        where = f" (config file {path})" if data else ""
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    finally:
        _FileSource.data = {}
