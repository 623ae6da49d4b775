"""Settings of the API process."""

from pathlib import Path

from pydantic import Field, SecretStr

from domain.instruments import DEFAULT_FILE as DEFAULT_INSTRUMENTS
from schemas.settings import TradecoreSettings


class ApiSettings(TradecoreSettings):
    """Authentication, limits and reference data of the API; set as ``TRADECORE_<FIELD>``."""

    jwt_secret: SecretStr = Field(
        description="HMAC key signing access tokens (HS256), at least 32 bytes; never logged. "
        "Generate one with `openssl rand -hex 32`."
    )
    jwt_issuer: str = Field("tradecore", description="`iss` of issued tokens; tokens from another issuer are refused.")
    jwt_audience: str = Field("tradecore-api", description="`aud` of issued tokens; others are refused.")
    token_ttl_s: int = Field(900, gt=0, le=86_400, description="Lifetime of an access token in seconds.")
    users_file: Path = Field(
        Path("users.toml"), description="TOML file of users: name, argon2 password hash, roles, accounts."
    )
    instruments_file: Path = Field(DEFAULT_INSTRUMENTS, description="TOML file of tradable instruments.")
    rate_limit: str = Field(
        "50/second", description="Commands allowed per account (orders, cancels, amends), `limits` notation."
    )
    ticks_rate_limit: str = Field("20/second", description="Tick batches allowed per user.")
    history_rate_limit: str = Field(
        "10/second", description="Point-in-time state queries allowed per user (each folds part of the log)."
    )
    login_failure_limit: str = Field(
        "10/minute;30/hour;100/day",
        description="Failed sign-ins allowed per user name from one client address, then 429 (the windows back off).",
    )
    login_address_failure_limit: str = Field(
        "20/minute;100/hour;300/day",
        description="Failed sign-ins allowed per client address over all user names (stops spraying one guess).",
    )
    users_recheck_s: float = Field(
        1.0, gt=0, le=5, description="How often the users file is looked at for changes (revoked users, passwords)."
    )
    tick_max_ahead_s: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="How far a tick's exchange_ts may be ahead of the server clock; later ones are refused (422). "
        "At most an hour: Kafka refuses records further ahead of the broker's clock.",
    )
    placements_in_flight: int = Field(
        1,
        ge=1,
        le=64,
        description="Group commits of orders a worker runs at once; orders arriving meanwhile wait and go together "
        "in the next (fewer at once: larger batches, less CPU per order under load; more at once: a slow commit "
        "holds fewer orders back). One measured best up to 1,000 orders/s on 2 workers (docs/PERFORMANCE.md).",
    )
    command_body_max_bytes: int = Field(
        64 * 1024, gt=0, description="Largest request body of a command or sign-in, in bytes; larger ones get 413."
    )
    ticks_body_max_bytes: int = Field(
        32 * 1024 * 1024, gt=0, description="Largest body of a tick batch (POST /v1/ticks), in bytes; 413 beyond."
    )
    order_wait_timeout_s: float = Field(
        2.0, gt=0, le=30, description="How long ?wait=ACCEPTED waits for risk before answering 202 PENDING."
    )
    read_wait_timeout_s: float = Field(
        5.0, gt=0, le=30, description="How long a query with ?min_offset= waits for its projection to get there."
    )
    read_waits_per_user: int = Field(
        8, ge=1, le=1000, description="Queries with ?min_offset= one user may wait on at once; more answer 429."
    )
    ready_max_projection_lag: int = Field(
        10_000, ge=0, description="/readyz fails when a read model is more records than this behind the log."
    )
    ready_timeout_s: float = Field(
        2.0, gt=0, le=30, description="How long each /readyz check (Kafka, registry, Postgres) may take."
    )
    host: str = Field("127.0.0.1", description="Address `tradecore api` listens on.")
    port: int = Field(8000, description="Port `tradecore api` listens on.")
    workers: int = Field(1, ge=1, description="Uvicorn worker processes.")
    shutdown_grace_s: int = Field(
        3, gt=0, le=300, description="How long a stop waits for requests in flight; open live streams are cut then."
    )
