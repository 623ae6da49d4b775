"""Kafka settings shared by every producer, consumer and processor."""

from pydantic import AliasChoices, Field

from schemas.settings import TradecoreSettings


class KafkaSettings(TradecoreSettings):
    """How to reach Kafka and how our topics are laid out; `stack up` writes the address to ``.stack/env``."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092",
        validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TRADECORE_KAFKA_BOOTSTRAP_SERVERS"),
        description="Comma-separated host:port list of brokers.",
    )
    topic_prefix: str = Field(
        "", description="Namespace put before every topic name (isolated tests, backtests, shadow replays)."
    )
    partitions: int = Field(
        6,
        ge=1,
        description="Partitions of each topic; co-partitioned topics (keyed by instrument) must match.",
    )
    append_timeout_ms: int = Field(
        10_000,
        ge=1_000,
        description="How long a command or tick append waits for Kafka's acknowledgement before the caller is told "
        "it failed (the API: 503); librdkafka's own default, 5 minutes, would hold the request and its claim.",
    )


class MetricsSettings(TradecoreSettings):
    """Where workers and the projector serve Prometheus metrics (the API serves them on its own port)."""

    metrics_host: str = Field("127.0.0.1", description="Listen address of /metrics; 0.0.0.0 in containers.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of /metrics; 0 turns it off; unset: 9400 + the worker's instance."
    )
