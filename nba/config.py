"""All settings of the engine, read from the environment (prefix ``NBA_``).

Every piece of state (Feast registry and stores, MLflow, decision log) lives under
``NBA_HOME`` so that two workspaces never trample each other.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from nba.exceptions import NBAError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Engine settings. Each field is read from ``NBA_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="NBA_", extra="ignore")

    home: Path = Field(
        default=Path(".nba"),
        description="Workspace directory holding every store of the engine.",
    )
    online_store: Literal["sqlite", "redis"] = Field(
        default="sqlite",
        description="Feast online store: 'sqlite' (embedded, default) or 'redis'.",
    )
    redis_url: str = Field(
        default="localhost:6379",
        description="Redis connection string in Feast's form 'host:port[,db=0,password=...]'.",
    )
    feature_repo: Path = Field(
        default=PROJECT_ROOT / "features",
        description="The Feast repository (feature_store.yaml and definitions).",
    )
    duckdb_memory_limit: str = Field(
        default="6GB",
        description="Memory cap for the DuckDB engine that validates data and builds profiles.",
    )
    duckdb_threads: int = Field(
        default=0, description="DuckDB worker threads; 0 means one per core."
    )
    decision_log_url: str = Field(
        default="",
        description="Decision log database: empty for SQLite at NBA_HOME/decision_log.db, "
        "or a PostgreSQL URL 'postgresql://user:pass@host:5432/db'.",
    )
    auth: bool = Field(
        default=True,
        description="Require an API key (header X-API-Key) on the API; false only for a "
        "local trial.",
    )
    feature_budget_ms: float = Field(
        default=25.0,
        gt=0,
        description="Time allowed for the online profile read; slower answers are ranked "
        "with default profile values and flagged degraded.",
    )
    max_body_bytes: int = Field(
        default=16_384, gt=0, description="Largest request body the API accepts (413 above)."
    )
    decision_log_deadline_ms: float = Field(
        default=1000.0,
        gt=0,
        description="Longest an API request waits for the decision log (a commit, a read); "
        "beyond it, or while the log is down, the answer is 503 with Retry-After.",
    )
    currency: str = Field(
        default="EUR",
        description="ISO 4217 code of the catalog's money amounts, as the agent desk shows "
        "them (EUR, USD, GBP, ...).",
    )
    stale_profile_days: float = Field(
        default=7.0,
        gt=0,
        description="A customer profile older than this many days gets a visible notice on "
        "the agent desk (the feature pipeline has not refreshed it).",
    )
    request_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="Time a client has to send a whole request (headers and body) from its "
        "first byte; slower requests get 408 and the connection is closed.",
    )
    max_connections: int = Field(
        default=1000,
        gt=0,
        description="Concurrent connections and requests the server accepts; beyond it, 503.",
    )
    auth_failures_per_minute: int = Field(
        default=30,
        ge=0,
        description="Invalid API keys one client address may send per minute before it gets "
        "429 for the rest of the minute (0 = no limit).",
    )
    model_poll_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often the API checks nba-policy@champion for a new version "
        "(0 = never; POST /admin/reload swaps at once).",
    )
    access_log: bool = Field(
        default=True, description="Write one JSON log line per API request (no customer data)."
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = Field(
        default="info", description="Log level of the API server."
    )
    exploration: Literal["off", "epsilon", "thompson"] = Field(
        default="off",
        description="How the API picks the shown action: 'off' (always the best), "
        "'epsilon' (epsilon-greedy) or 'thompson' (Thompson sampling over the "
        "propensities' uncertainty). The probability of the shown action is logged.",
    )
    epsilon: float = Field(
        default=0.1, ge=0, le=1, description="Share of random candidates under 'epsilon'."
    )
    thompson_strength: float = Field(
        default=200.0,
        gt=0,
        description="Pseudo-observations behind a propensity under 'thompson' (more: "
        "less exploration).",
    )
    control_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of customers (stable by customer id) in the control group, who "
        "get a uniformly random candidate instead of the NBA.",
    )
    challenger_share: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Share of customers (stable by customer id, after the control group) "
        "served by @challenger instead of @champion, with the same exploration, so the "
        "promotion gate can compare the two on their own traffic. 0: off.",
    )
    exploration_seed: int | None = Field(
        default=None, description="Seed of the API's random draws (for simulations)."
    )

    @field_validator("log_level", "online_store", "exploration", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("currency", mode="before")
    @classmethod
    def _currency_code(cls, value: object) -> object:
        code = value.strip().upper() if isinstance(value, str) else value
        if not (isinstance(code, str) and len(code) == 3 and code.isascii() and code.isalpha()):
            raise ValueError("a three-letter currency code such as EUR, USD or GBP")
        return code

    @property
    def home_dir(self) -> Path:
        """The workspace as an absolute path (not created here: no I/O in settings)."""
        return self.home.expanduser().resolve()

    @property
    def feast_dir(self) -> Path:
        return self.home_dir / "feast"

    @property
    def decision_log(self) -> str:
        """The decision log's URL (``sqlite:///...`` by default)."""
        return self.decision_log_url or f"sqlite:///{self.home_dir / 'decision_log.db'}"

    @property
    def profiles_path(self) -> Path:
        """Parquet file behind the Feast offline store's customer profile source."""
        return self.feast_dir / "data" / "customer_profiles.parquet"


class SettingsError(NBAError):
    """An ``NBA_`` environment variable holds a value the engine cannot use."""


def _setting_problems(exc: ValidationError) -> str:
    """One line per bad variable: its name, the value given and what is allowed."""
    lines = []
    for e in exc.errors():
        name = "NBA_" + "_".join(str(part) for part in e["loc"]).upper()
        given = e.get("input", "")
        allowed = str(e["msg"]).removeprefix("Input should be ").removeprefix("Value error, ")
        lines.append(f"{name}={given!r} is not a valid setting: it should be {allowed}")
    return "; ".join(lines) + " (see the README's settings table)"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests clear the cache with ``get_settings.cache_clear()``.

    Raises :class:`SettingsError` naming each bad ``NBA_`` variable."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(_setting_problems(exc)) from None
