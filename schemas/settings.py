"""Schema-registry settings."""

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class RegistrySettings(BaseSettings):
    """How to reach the Confluent-compatible schema registry; `stack up` writes its URL to ``.stack/env``."""

    model_config = SettingsConfigDict(env_prefix="TRADECORE_", env_file=".stack/env", frozen=True, extra="ignore")

    url: str = Field(
        "http://127.0.0.1:8081/apis/ccompat/v7",
        validation_alias=AliasChoices("SCHEMA_REGISTRY_URL", "TRADECORE_SCHEMA_REGISTRY_URL"),
        description="Base URL of the Confluent schema-registry API (Apicurio: .../apis/ccompat/v7).",
    )
