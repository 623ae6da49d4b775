"""Database settings of the read side."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.settings import STACK_ENV_FILE


class DatabaseSettings(BaseSettings):
    """Where the read models live; `stack up` writes the local server's URL to ``.stack/env``."""

    model_config = SettingsConfigDict(
        env_prefix="TRADECORE_", env_file=STACK_ENV_FILE, frozen=True, extra="ignore", populate_by_name=True
    )

    url: str = Field(
        "postgresql+psycopg://postgres@127.0.0.1:5432/tradecore",
        validation_alias=AliasChoices("DATABASE_URL", "TRADECORE_DATABASE_URL"),
        description="SQLAlchemy URL of the Postgres database; plain postgresql:// URLs use psycopg 3.",
    )
    pool_size: int = Field(5, ge=1, description="Connections kept open per process.")
