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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_PORT = 8130
DEFAULT_DATA_DIR = Path("~/.batchyard")


class ConfigError(Exception):
    """The settings are not usable; the message says which setting and why."""


class Webhook(BaseModel):
    """A webhook: job state change events are POSTed to ``url``, one event per request."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,128}$")
    url: str = Field(pattern=r"^https?://")
    secret: str | None = Field(
        None, description="Signs each body: header X-Batchyard-Signature: sha256=<hex HMAC>."
    )
    max_attempts: int = Field(10, ge=1, le=1000)
    backoff_seconds: float = Field(1.0, gt=0)
    max_backoff_seconds: float = Field(300.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    statuses: list[str] | None = None  # only transitions to these statuses
    queues: list[str] | None = None  # only jobs of these queues (names)
    headers: dict[str, str] = Field(default_factory=dict)
    start: str = Field("latest", pattern=r"^(latest|earliest)$")


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    vcpu_hour: float | None = Field(None, ge=0)
    gib_hour: float | None = Field(None, ge=0)
    instance_type: str | None = None


class InstancePrice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hourly: float = Field(ge=0)
    vcpus: float = Field(gt=0)
    memory_gib: float = Field(gt=0)


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
    # Observability (docs/observability.md)
    webhooks: list[Webhook] = Field(
        default_factory=list,
        description="Where job state change events are POSTed (at-least-once, in order per job).",
    )
    price_vcpu_hour: float = Field(
        0.024, ge=0, description="Price of one vCPU for an hour (default: half an m5.large)."
    )
    price_gib_hour: float = Field(
        0.006, ge=0, description="Price of one GiB of memory for an hour (m5.large's other half)."
    )
    compute_environment_prices: dict[str, Price] = Field(
        default_factory=dict,
        description="Per compute environment: its own vCPU-hour and GiB-hour prices, or an "
        "instance type of instance_prices.",
    )
    instance_prices: dict[str, InstancePrice] = Field(
        default_factory=dict,
        description="Instance types: hourly price, vCPUs and GiB; a compute environment whose "
        "instanceTypes names one is priced by it.",
    )
    currency: str = Field("USD", min_length=1, max_length=8)
    # Security (docs/security.md)
    auth: str = Field(
        "off",
        pattern=r"^(off|required)$",
        description="required: every request must be signed (SigV4) with a batchyard access key "
        "and is checked against its policies; off: any signature (or none) is accepted, which "
        "the server allows only on a loopback address.",
    )
    tls_cert: Path | None = Field(None, description="PEM certificate (chain): serve HTTPS.")
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert.")
    master_key_file: Path | None = Field(
        None,
        description="Fernet key that encrypts access keys' secrets and secret values in the "
        "store; default <data dir>/master.key (created 0600). Servers sharing a PostgreSQL "
        "database need the same key.",
    )
    max_clock_skew_seconds: int = Field(
        900,
        ge=60,
        le=3600,
        description="A signature's timestamp may be this far off (AWS: 15 min).",
    )
    rate_limit: float | None = Field(
        None,
        ge=0,
        description="Requests per second per principal (token bucket); default 50 when auth is "
        "required, none when it is off; 0 turns it off.",
    )
    rate_burst: int | None = Field(
        None, ge=1, description="Bucket size of rate_limit; default twice the rate."
    )
    max_jobs_per_queue: int = Field(
        2_000_000,
        ge=1,
        description="Unfinished jobs (array children and nodes count one each) a queue may hold; "
        "SubmitJob beyond it is refused.",
    )
    auth_metrics: bool = Field(
        True, description="With auth required, /metrics needs a signature too (false: open)."
    )
    audit_retention_days: float = Field(90.0, gt=0, description="How long audit records stay.")
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="Lifetime of a dashboard login session."
    )
    isolate_jobs: bool | None = Field(
        None,
        description="Run each attempt under a uid of its own (job_uid_base + n) in run_as's "
        "group; default: on when the server runs as root and run_as is not set.",
    )
    job_uid_base: int = Field(2_000_000_000, ge=1000, le=4_000_000_000)
    job_uid_count: int = Field(65536, ge=16, le=1 << 24)
    work_dir: Path | None = Field(
        None,
        description="Where attempts' private working directories are made; default "
        "<data dir>/local/work, or /var/tmp/batchyard-<uid>/<hash> when jobs run as another user.",
    )

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, v: Path) -> Path:
        return v.expanduser().absolute()

    @field_validator("tls_cert", "tls_key", "master_key_file", "work_dir")
    @classmethod
    def _expand_optional(cls, v: Path | None) -> Path | None:
        return v.expanduser().absolute() if v is not None else None

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
        scheme = "https" if self.tls_cert else "http"
        return f"{scheme}://{host}:{self.port}"


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
    data: dict[str, Any] = {}
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
