"""All configuration in one place, read from the environment (and a ``.env`` file).

Secrets are ``SecretStr``: their ``repr``/``str`` print ``**********``, so a settings
object can be logged or shown in an error without leaking a key.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, get_args

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from playground.catalog import TokenPrice
from playground.errors import ConfigError
from playground.redact import SecretUrl

ProviderName = Literal["elumenta", "demo", "openai_compatible"]
BatchExecution = Literal["in_process", "worker"]
AuthMode = Literal["none", "oidc", "proxy"]
Role = Literal["admin", "member", "viewer"]

DEFAULT_BASE_URL = "https://elumenta.ru/api/v2"
MIN_PROXY_SECRET_CHARS = 16


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class Settings(BaseSettings):
    """Playground settings; every field has a safe default so the app runs with none set."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True
    )

    elumenta_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("ELUMENTA_API_KEY")
    )
    elumenta_base_url: str = Field(
        default=DEFAULT_BASE_URL, validation_alias=_env("ELUMENTA_BASE_URL")
    )
    # Masked wherever the settings are printed: the URL may carry the database's password.
    database_url: SecretUrl | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_DATABASE_URL")
    )
    data_dir: Path = Field(
        default=Path.home() / ".elumenta-playground", validation_alias=_env("PLAYGROUND_DATA_DIR")
    )
    catalog_path: Path | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_CATALOG_PATH")
    )
    provider: ProviderName | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_PROVIDER")
    )

    connect_timeout_s: float = Field(
        default=10.0, gt=0, validation_alias=_env("PLAYGROUND_CONNECT_TIMEOUT_S")
    )
    read_timeout_s: float = Field(
        default=60.0, gt=0, validation_alias=_env("PLAYGROUND_READ_TIMEOUT_S")
    )
    model_timeout_s: float = Field(
        default=300.0, gt=0, validation_alias=_env("PLAYGROUND_MODEL_TIMEOUT_S")
    )
    # Requests in flight at once per batch worker process (README "Settings").
    max_concurrency: int = Field(
        default=8, ge=1, le=64, validation_alias=_env("PLAYGROUND_MAX_CONCURRENCY")
    )
    # Model streams at once in one app (or CLI) process, every user's comparisons together;
    # also each provider's HTTP connection pool size. 128: the 20 users a process is sized
    # for (docs/deploy.md) can all run six models at once without waiting for a slot.
    max_streams: int = Field(
        default=128, ge=1, le=1024, validation_alias=_env("PLAYGROUND_MAX_STREAMS")
    )
    max_retries: int = Field(
        default=3, ge=0, le=10, validation_alias=_env("PLAYGROUND_MAX_RETRIES")
    )
    max_retry_wait_s: float = Field(
        default=30.0, ge=0, validation_alias=_env("PLAYGROUND_MAX_RETRY_WAIT_S")
    )
    flush_interval_s: float = Field(
        default=1.5, gt=0, validation_alias=_env("PLAYGROUND_FLUSH_INTERVAL_S")
    )
    # Live answers reach the browser over the app's own route (GET /_run/<id>/events); off,
    # every page polls as it did before (a proxy that cannot pass the route, a comparison).
    live_route: bool = Field(default=True, validation_alias=_env("PLAYGROUND_LIVE_ROUTE"))
    # How long history writes wait for a database that went away (a restart, a failover, a
    # locked SQLite file) before finished answers go to the spool file (README "Settings").
    db_outage_wait_s: float = Field(
        default=60.0, ge=0, validation_alias=_env("PLAYGROUND_DB_OUTAGE_WAIT_S")
    )
    # PostgreSQL: the server cancels a statement running longer, and a connection that has
    # not answered a little after that is closed and treated as an outage (0: no limit).
    db_statement_timeout_s: float = Field(
        default=30.0, ge=0, validation_alias=_env("PLAYGROUND_DB_STATEMENT_TIMEOUT_S")
    )

    demo_time_scale: float = Field(
        default=1.0, ge=0, validation_alias=_env("PLAYGROUND_DEMO_TIME_SCALE")
    )
    max_prompt_chars: int = Field(
        default=200_000, ge=1, validation_alias=_env("PLAYGROUND_MAX_PROMPT_CHARS")
    )

    openai_base_url: str | None = Field(
        default=None, validation_alias=_env("OPENAI_COMPATIBLE_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=_env("OPENAI_COMPATIBLE_API_KEY")
    )
    openai_models: str = Field(default="", validation_alias=_env("OPENAI_COMPATIBLE_MODELS"))
    # JSON {"model": {"prompt_per_1k": 0.5, "completion_per_1k": 1.5}}: billing tokens per
    # 1,000 of the model's tokens, so its answers are costed and budgeted like Elumenta's.
    openai_prices: dict[str, TokenPrice] = Field(
        default_factory=dict, validation_alias=_env("PLAYGROUND_OPENAI_PRICES")
    )

    # Where batch evaluations run (README "Scale-out"): in the app's own process, or on
    # `python -m playground worker` processes sharing one PostgreSQL database.
    batch_execution: BatchExecution = Field(
        default="in_process", validation_alias=_env("PLAYGROUND_BATCH_EXECUTION")
    )
    # Queue jobs per started batch: how many workers can work on one batch at once.
    batch_shards: int = Field(
        default=4, ge=1, le=64, validation_alias=_env("PLAYGROUND_BATCH_SHARDS")
    )
    batch_heartbeat_s: float = Field(
        default=10.0, gt=0, validation_alias=_env("PLAYGROUND_BATCH_HEARTBEAT_S")
    )
    # A batch or cell whose heartbeat is older than this is abandoned, whatever its host.
    batch_stale_after_s: float = Field(
        default=60.0, gt=0, validation_alias=_env("PLAYGROUND_BATCH_STALE_AFTER_S")
    )

    @model_validator(mode="after")
    def _check_batch_execution(self) -> Settings:
        if self.batch_stale_after_s <= self.batch_heartbeat_s:
            raise ValueError(
                "PLAYGROUND_BATCH_STALE_AFTER_S must be longer than PLAYGROUND_BATCH_HEARTBEAT_S, "
                "or live batches would look abandoned."
            )
        if self.batch_execution == "worker" and not self.uses_postgresql:
            # Not a ValueError: pydantic would bury the message in a validation report.
            raise ConfigError(
                "PLAYGROUND_BATCH_EXECUTION=worker needs a PostgreSQL database shared by the app "
                "and the workers (PLAYGROUND_DATABASE_URL=postgresql+psycopg://…); with SQLite, "
                "leave it at in_process."
            )
        return self

    @property
    def uses_postgresql(self) -> bool:
        """Whether the database in use is PostgreSQL (workers and several app processes need it)."""
        scheme = self.resolved_database_url.partition(":")[0]
        return scheme.partition("+")[0] == "postgresql"

    # Hosted team mode (docs/deploy.md). "none" is the single-user localhost app.
    auth_mode: AuthMode = Field(default="none", validation_alias=_env("PLAYGROUND_AUTH"))
    # Proxy mode: the header carrying the signed-in user's e-mail, trusted only from these
    # peer addresses/networks (the reverse proxy's), never from the open internet.
    identity_header: str = Field(
        default="X-Forwarded-Email", validation_alias=_env("PLAYGROUND_IDENTITY_HEADER")
    )
    trusted_proxies: str = Field(
        default="127.0.0.1/32,::1/128", validation_alias=_env("PLAYGROUND_TRUSTED_PROXIES")
    )
    # Proxy mode: what the proxy sends in X-Playground-Proxy-Secret to prove a request came
    # through it; a trusted address alone would let anyone on the proxy's host sign in as anyone.
    proxy_secret: SecretStr | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_PROXY_SECRET")
    )
    # Comma-separated e-mails that are admins on first sign-in; everyone else gets default_role.
    admin_emails: str = Field(default="", validation_alias=_env("PLAYGROUND_ADMIN_EMAILS"))
    default_role: Role = Field(default="member", validation_alias=_env("PLAYGROUND_DEFAULT_ROLE"))
    # Encrypts personal API keys at rest (any long random string; keep it out of the repo).
    secret_key: SecretStr | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_SECRET_KEY")
    )
    # After changing secret_key: the previous secrets, comma-separated, still decrypt saved
    # keys until `python -m playground keys rotate` re-encrypted them (docs/deploy.md).
    old_secret_keys: SecretStr | None = Field(
        default=None, validation_alias=_env("PLAYGROUND_OLD_SECRET_KEYS")
    )
    default_daily_budget_tokens: int | None = Field(
        default=None, ge=0, validation_alias=_env("PLAYGROUND_DAILY_BUDGET_TOKENS")
    )
    default_monthly_budget_tokens: int | None = Field(
        default=None, ge=0, validation_alias=_env("PLAYGROUND_MONTHLY_BUDGET_TOKENS")
    )
    default_requests_per_minute: int = Field(
        default=60, ge=1, validation_alias=_env("PLAYGROUND_REQUESTS_PER_MINUTE")
    )

    @model_validator(mode="after")
    def _check_proxy_secret(self) -> Settings:
        secret = self.proxy_secret.get_secret_value() if self.proxy_secret else ""
        if self.auth_mode == "proxy" and len(secret) < MIN_PROXY_SECRET_CHARS:
            # A ConfigError, like the worker check above: refused before anyone can sign in.
            raise ConfigError(
                "PLAYGROUND_AUTH=proxy needs PLAYGROUND_PROXY_SECRET: a random string of at "
                f"least {MIN_PROXY_SECRET_CHARS} characters that the reverse proxy sends in the "
                "X-Playground-Proxy-Secret header. Without it anyone who can reach an app port "
                "could sign in as anyone; see docs/deploy.md."
            )
        return self

    @field_validator("elumenta_base_url", "openai_base_url")
    @classmethod
    def _strip_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    @property
    def default_provider(self) -> ProviderName:
        """The provider used when none is chosen: Elumenta with a key, else the offline demo."""
        if self.provider is not None:
            return self.provider
        return "elumenta" if self.elumenta_api_key else "demo"

    @property
    def hosted(self) -> bool:
        """True when users sign in (team server); False for the single-user localhost app."""
        return self.auth_mode != "none"

    @property
    def admin_email_set(self) -> frozenset[str]:
        """The configured admin e-mails, lower-cased."""
        return frozenset(e.strip().lower() for e in self.admin_emails.split(",") if e.strip())

    @property
    def trusted_proxy_list(self) -> list[str]:
        """The trusted proxy addresses/networks as written (validated by the identity code)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def old_secret_key_list(self) -> list[SecretStr]:
        """The earlier server secrets that still decrypt personal keys (none when unset)."""
        value = self.old_secret_keys.get_secret_value() if self.old_secret_keys else ""
        return [SecretStr(s.strip()) for s in value.split(",") if s.strip()]

    @property
    def openai_model_list(self) -> list[str]:
        """Model names configured for the OpenAI-compatible provider (comma-separated env)."""
        return [m.strip() for m in self.openai_models.split(",") if m.strip()]

    @property
    def resolved_catalog_path(self) -> Path:
        """The user's catalog file (it may not exist yet; the packaged seed is used then)."""
        return self.catalog_path or self.data_dir / "models.json"

    @property
    def spool_dir(self) -> Path:
        """Where answers wait on disk while the database stays unreachable."""
        return self.data_dir / "spool"

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: the configured one, else a SQLite file in ``data_dir``."""
        if self.database_url and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite:///{self.data_dir / 'history.sqlite3'}"


def _is_secret(annotation: object) -> bool:
    return any(
        isinstance(t, type) and issubclass(t, SecretStr)
        for t in (annotation, *get_args(annotation))
    )


# Variables whose value an error message must not repeat.
_SECRET_NAMES = frozenset(
    str(alias)
    for field in Settings.model_fields.values()
    if _is_secret(field.annotation) and isinstance(field.validation_alias, AliasChoices)
    for alias in field.validation_alias.choices
)


def load_settings() -> Settings:
    """Settings from the environment (and ``.env``).

    Raises :class:`ConfigError` naming every invalid variable and what is wrong with it,
    instead of pydantic's report; the value of a secret is never repeated.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = " ".join(_describe(error) for error in exc.errors(include_url=False))
        raise ConfigError(f"Invalid configuration: {problems}") from exc


def _describe(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ").rstrip(".") + "."
    if not error["loc"]:
        return message
    name = str(error["loc"][0])
    value = "" if name in _SECRET_NAMES else f"={str(error['input'])[:80]!r}"
    return f"{name}{value}: {message}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings read once per process (see :func:`load_settings`); tests build ``Settings``."""
    return load_settings()
