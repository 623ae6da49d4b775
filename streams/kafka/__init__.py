"""The Kafka edge: the only package of tradecore that imports confluent-kafka.

Client factories and the confluent-kafka types the rest of the code names (``clients``), the settings
(``settings``), the topics of the design and their admin (``topics``), reading partitions from given offsets and
up to given ones (``logreader``), one transaction with its commit policy (``transactions``), and the trace context
records carry in their headers (``tracing``), the schema-registry client (``registry``: imported on its own, as it
pulls in an HTTP stack the Kafka clients do not need).
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

from streams.kafka.clients import FinalCommits, admin, broker_count, consumer, producer
from streams.kafka.settings import KafkaSettings

__all__ = [
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "AdminClient",
    "Consumer",
    "FinalCommits",
    "KafkaError",
    "KafkaException",
    "KafkaSettings",
    "Message",
    "Producer",
    "TopicPartition",
    "admin",
    "broker_count",
    "consumer",
    "producer",
]
