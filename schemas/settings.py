"""Schema-registry settings, and where every settings class finds the endpoints `stack up` wrote."""

import os
from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# `tradecore stack up` writes KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and SCHEMA_REGISTRY_URL here; real
# environment variables take precedence over it.
STACK_ENV_FILE = Path(os.environ.get("TRADECORE_STACK_DIR", ".stack")) / "env"


class TradecoreSettings(BaseSettings):
    """Base of all settings: frozen, ``TRADECORE_``-prefixed, `.stack/env` beneath the real environment."""

    model_config = SettingsConfigDict(
        env_prefix="TRADECORE_", env_file=STACK_ENV_FILE, frozen=True, extra="ignore", populate_by_name=True
    )


class RegistrySettings(TradecoreSettings):
    """How to reach the Confluent-compatible schema registry; `stack up` writes its URL to ``.stack/env``."""

    url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "TRADECORE_SCHEMA_REGISTRY_URL"),
        description="Base URL of the Confluent schema-registry API (Apicurio: .../apis/ccompat/v7).",
    )
