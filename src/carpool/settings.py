"""Configuration: one pydantic-settings class read from the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from limits import parse as parse_rate_limit
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# OTEL_TRACES_EXPORTER values carpool can honour with the packages it installs.
TRACE_EXPORTERS = frozenset({"none", "otlp", "otlp_proto_http", "console"})


class ConfigurationError(RuntimeError):
    """Raised at start when an environment variable holds a bad value."""


class Settings(BaseSettings):
    """Every knob of carpool, each read from the environment variable of the same name."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg:// URL; unset means an embedded PostgreSQL under DATA_DIR.",
    )
    database_read_url: str | None = Field(
        default=None,
        description="A read replica's URL: read-only calls go there; unset: the primary.",
    )
    database_listen_url: str | None = Field(
        default=None,
        description="Where live answers LISTEN for changes (the primary, not through a"
        " transaction-pooling PgBouncer); unset means DATABASE_URL.",
    )
    data_dir: Path = Field(
        default=Path(".data"), description="Where the embedded PostgreSQL lives."
    )
    db_pool_size: int = Field(default=10, ge=1, le=1000)
    db_max_overflow: int = Field(default=10, ge=0, le=1000)
    db_pool_timeout_s: float = Field(default=10.0, gt=0, le=600)
    db_statement_cache_size: int = Field(
        default=100,
        ge=0,
        le=100_000,
        description="Prepared statements kept per connection; 0 behind PgBouncer < 1.21.",
    )
    request_max_bytes: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    request_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="Seconds a request body may take to arrive (408 past it).",
    )
    json_max_depth: int = Field(
        default=64,
        ge=2,
        le=200,
        description="Deepest nesting of arrays and objects in a body, an item body or a frame.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    access_log: bool = False
    batch_max_items: int = Field(default=50, ge=1, le=10_000)
    batch_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    ws_max_in_flight: int = Field(default=16, ge=1, le=10_000)
    ws_max_frame_bytes: int = Field(default=1_048_576, ge=1024, le=1_073_741_824)
    ws_shutdown_grace_s: float = Field(
        default=10.0, gt=0, le=600, description="Seconds frames get to finish at shutdown."
    )
    idempotency_ttl_s: float = Field(
        default=86_400.0, gt=0, le=31_536_000, description="How long Idempotency-Keys are kept."
    )
    ws_max_subscriptions: int = Field(
        default=100, ge=1, le=100_000, description="Live subscriptions one socket may hold."
    )
    live_max_subscriptions: int = Field(
        default=10_000, ge=1, le=10_000_000, description="Live subscriptions one worker may hold."
    )
    coalesce_lookups: bool = Field(
        default=True, description="DataLoader coalescing; turn off only to measure its effect."
    )
    inventory_url: str | None = Field(
        default=None, description="Base URL of the inventory service."
    )
    upstream_timeout_s: float = Field(default=5.0, gt=0, le=600)
    upstream_max_connections: int = Field(default=100, ge=1, le=10_000)
    upstream_max_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        le=1_073_741_824,
        description="Largest upstream answer read (incrementally); 502 past it.",
    )
    metrics_scope: str | None = Field(
        default=None,
        description="The scope a caller of /metrics needs; unset = public (no identity).",
    )
    request_log: bool = Field(
        default=True, description="One JSON log line per request, batch (with its items) and frame."
    )
    otel_traces_exporter: str = Field(
        default="none", description="Tracing exporters (none, otlp, console); none = tracing off."
    )
    otel_sdk_disabled: bool = Field(
        default=False, description="true turns tracing off whatever else says."
    )
    seed_demo_data: bool = Field(
        default=True, description="Load a few demo rows into an empty embedded database."
    )
    # -- identity, scopes and abuse limits (docs/security.md) --
    auth_jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret that signs and verifies tokens."
    )
    auth_jwt_public_key: str | None = Field(
        default=None, description="PEM public key (or a path to one): RS256/ES256 tokens."
    )
    auth_jwks_url: str | None = Field(
        default=None, description="An identity provider's JWKS URL: RS256/ES256 tokens."
    )
    auth_audience: str | None = Field(default=None, description="Required `aud` claim.")
    auth_issuer: str | None = Field(default=None, description="Required `iss` claim.")
    auth_anonymous_scopes: str = Field(
        default="", description="Space-separated scopes granted to callers without a token."
    )
    allowed_origins: str = Field(
        default="", description="Comma-separated origins allowed by CORS and at /ws."
    )
    rate_limit: str | None = Field(
        default=None, description="Calls per caller, e.g. 1200/minute; unset = no limit."
    )
    rate_limit_storage_url: str = Field(
        default="memory://", description="memory:// (per worker) or redis://host:port/db."
    )
    batch_max_response_bytes: int = Field(default=8 * 1_048_576, ge=1024, le=1 << 40)
    ws_max_connections_per_caller: int = Field(default=16, ge=1, le=100_000)
    ws_max_pending_bytes: int = Field(
        default=4 * 1_048_576,
        ge=1024,
        le=1 << 40,
        description="Unsent bytes one socket may hold for a slow reader (one answer at least).",
    )
    ws_send_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, description="How long one send may wait for the peer to read."
    )
    ws_auth_timeout_s: float = Field(
        default=5.0, gt=0, le=600, description="Seconds a socket without a caller gets to send one."
    )
    ws_max_anonymous_per_address: int = Field(
        default=16, ge=1, le=100_000, description="Sockets without a token per client address."
    )
    live_max_subscriptions_per_caller: int | None = Field(
        default=None,
        ge=1,
        le=10_000_000,
        description="Subscriptions one caller (or address) may hold per worker; unset: a tenth.",
    )
    upstream_max_calls: int = Field(
        default=200, ge=1, le=1_000_000, description="Upstream lookups one call may make."
    )
    server_timing: bool = Field(default=True, description="false: no Server-Timing header.")
    # -- dependencies failing (docs/faults.md) --
    db_statement_timeout_s: float | None = Field(
        default=15.0,
        gt=0,
        le=3600,
        description="A statement's deadline: the server's statement_timeout and lock_timeout;"
        " the client gives up 1 s later (a frozen server); 503 past it.",
    )
    db_session_defaults: Literal["startup", "role"] = Field(
        default="startup",
        description="startup: read-only sessions and the deadline sent as startup parameters;"
        " role: the database role carries them (PgBouncer < 1.20), checked per connection.",
    )
    rate_limit_on_storage_error: Literal["allow", "refuse"] = Field(
        default="allow",
        description="When Redis cannot be reached: allow (each worker counts its own budget"
        " meanwhile, WARNING) or refuse (503 + Retry-After).",
    )
    rate_limit_storage_timeout_s: float = Field(
        default=0.5, gt=0, le=60, description="Longest wait for the rate-limit storage."
    )
    request_log_items: bool = Field(
        default=False, description="A request log line per batch item as well (REQUEST_LOG)."
    )
    metrics: bool = Field(
        default=True, description="false: calls and units of work are not counted in /metrics."
    )

    @field_validator("database_url", "database_read_url", "database_listen_url")
    @classmethod
    def _asyncpg_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        for prefix in ("postgresql://", "postgres://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value.removeprefix(prefix)
        if not value.startswith("postgresql+asyncpg://"):
            raise ValueError("must be a postgresql:// or postgresql+asyncpg:// URL")
        return value

    @field_validator("metrics_scope")
    @classmethod
    def _scope_or_public(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("inventory_url", "auth_jwks_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("otel_traces_exporter")
    @classmethod
    def _known_exporters(cls, value: str) -> str:
        names = [name.strip().lower() for name in value.split(",") if name.strip()] or ["none"]
        unknown = sorted(set(names) - TRACE_EXPORTERS)
        if unknown:
            raise ValueError(
                f"unknown exporter(s) {', '.join(unknown)}; use {sorted(TRACE_EXPORTERS)}"
            )
        return ",".join(names)

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or value.strip() in ("", "off", "none"):
            return None
        try:
            parse_rate_limit(value)
        except ValueError:
            raise ValueError("must look like 1200/minute, 20/second or 10000/hour") from None
        return value.strip()

    @field_validator("rate_limit_storage_url")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+unix://")):
            raise ValueError("must be memory:// or a redis:// URL")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> Settings:
        given = [
            name
            for name, value in (
                ("AUTH_JWT_SECRET", self.auth_jwt_secret),
                ("AUTH_JWT_PUBLIC_KEY", self.auth_jwt_public_key),
                ("AUTH_JWKS_URL", self.auth_jwks_url),
            )
            if value
        ]
        if len(given) > 1:
            raise ValueError(f"set only one of {', '.join(given)}")
        return self

    @property
    def anonymous_scopes(self) -> frozenset[str]:
        """AUTH_ANONYMOUS_SCOPES as a set."""
        return frozenset(self.auth_anonymous_scopes.split())

    @property
    def per_caller_subscriptions(self) -> int:
        """LIVE_MAX_SUBSCRIPTIONS_PER_CALLER, or a tenth of the worker's (at least a socket's)."""
        if self.live_max_subscriptions_per_caller is not None:
            return self.live_max_subscriptions_per_caller
        return max(self.ws_max_subscriptions, self.live_max_subscriptions // 10)

    @property
    def origins(self) -> frozenset[str]:
        """ALLOWED_ORIGINS as a set of `scheme://host[:port]`, without trailing slashes."""
        listed = (origin.strip().rstrip("/") for origin in self.allowed_origins.split(","))
        return frozenset(origin for origin in listed if origin)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


def load_settings() -> Settings:
    """Read the environment; a bad value raises ConfigurationError naming the variable."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            if err["loc"]
            else err["msg"].removeprefix("Value error, ")
            for err in exc.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None
