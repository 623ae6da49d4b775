"""The Kafka edge: the only package of tradecore that imports confluent-kafka.

Client factories and the confluent-kafka types the rest of the code names (``clients``), the settings
(``settings``), the topics of the design and their admin (``topics``), reading partitions from given offsets and
up to given ones (``logreader``), one transaction with its commit policy (``transactions``), and the trace context
records carry in their headers (``tracing``).
"""

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from streams.kafka.clients import admin, broker_count, consumer, producer
from streams.kafka.settings import KafkaSettings

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "AdminClient",
    "Consumer",
    "KafkaError",
    "KafkaException",
    "KafkaSettings",
    "Message",
    "Producer",
    "SchemaRegistryClient",
    "TopicPartition",
    "admin",
    "broker_count",
    "consumer",
    "producer",
]
