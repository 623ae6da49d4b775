"""confluent-kafka's own registry client, the tests' independent reference for the wire format.

Bounded: its default timeout is none, and a registry connection that never answers (seen once in a CI rehearsal,
tests/schemas/batch/test_registry.py hanging 16 minutes) would hold the whole suite.
"""

from __future__ import annotations

from confluent_kafka.schema_registry import SchemaRegistryClient

TIMEOUT_S = 30


def registry(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "timeout": TIMEOUT_S})
