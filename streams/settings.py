"""Settings of the stream workers beside Kafka's own (``streams.kafka.settings``)."""

from pydantic import Field

from schemas.settings import TradecoreSettings
from streams.kafka.settings import KafkaSettings

# KafkaSettings lives in the Kafka edge; the worker commands, tests and benchmarks take it from here too.
__all__ = ["KafkaSettings", "MetricsSettings"]


class MetricsSettings(TradecoreSettings):
    """Where workers and the projector serve Prometheus metrics (the API serves them on its own port)."""

    metrics_host: str = Field("127.0.0.1", description="Listen address of /metrics; 0.0.0.0 in containers.")
    metrics_port: int | None = Field(
        None, ge=0, le=65535, description="Port of /metrics; 0 turns it off; unset: 9400 + the worker's instance."
    )
