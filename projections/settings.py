"""Database settings of the read side."""

from pydantic import AliasChoices, Field

from schemas.settings import TradecoreSettings


class DatabaseSettings(TradecoreSettings):
    """Where the read models live; `stack up` writes the local server's URL to ``.stack/env``."""

    url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/tradecore",
        validation_alias=AliasChoices("DATABASE_URL", "TRADECORE_DATABASE_URL"),
        description="SQLAlchemy URL of the Postgres database; plain postgresql:// URLs use psycopg 3.",
    )
    pool_size: int = Field(5, ge=1, description="Connections kept open per process.")
    connection_wait_s: float = Field(
        5.0,
        gt=0,
        le=60,
        description="How long a request waits for a pooled connection (Postgres down, or every connection busy) "
        "before it is refused: the API then answers 503 with Retry-After.",
    )
