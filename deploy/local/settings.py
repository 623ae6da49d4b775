"""Configuration of the local stack (environment variables prefixed ``TRADECORE_``)."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StackSettings(BaseSettings):
    """Where and how the local stack runs; every field can be set as ``TRADECORE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="TRADECORE_", frozen=True, extra="ignore")

    stack_dir: Path = Field(
        Path(".stack"), description="Directory holding the stack's data, logs, pids and resolved jars."
    )
    kafka_port: int = Field(
        9092,
        description="Client port of broker 1; broker n listens on kafka_port + 100*(n-1), +1 for its controller.",
    )
    kafka_heap: str = Field("768m", description="Maximum JVM heap of each Kafka broker (-Xmx).")
    registry_port: int = Field(8081, description="HTTP port of the schema registry (Confluent-compatible API).")
    registry_management_port: int = Field(
        9081, description="Port of the registry's management interface (health and metrics)."
    )
    registry_heap: str = Field("512m", description="Maximum JVM heap of the schema registry (-Xmx).")
    registry_java: Path | None = Field(
        None,
        description="A Java 21+ executable for the registry; found under JAVA_HOME, PATH or /usr/lib/jvm when unset.",
    )
    startup_timeout_s: float = Field(180.0, description="How long `stack up` waits for each component to answer.")
