"""confluent-kafka's own registry client and deserializer, the tests' independent reference for the wire format.

Bounded: its default timeout is none, and a registry connection that never answers (seen once in a CI rehearsal,
tests/schemas/batch/test_registry.py hanging 16 minutes) would hold the whole suite. A schema look-up that takes
longer than ``SLOW_S`` is said as a warning, which pytest lists for passing tests too.

Subjects are named as tradecore names them (``SUBJECTS``). Left to its default, confluent-kafka 2.16's serializers and
deserializers first ask the registry which subject a topic is associated with (``GET /associations/...``), an endpoint
Apicurio's Confluent API does not have; its answer to an unknown route (404, an empty body) leaves about one request
in 300 to 600 unanswered on a kept-alive connection until the client's 30 s timeout — measured against the local stack's
Apicurio: 600 look-ups of a missing subject (a known route's 404) in 1.3 s, 600 association look-ups in 31.9 s, one of
them 30.9 s. That was the ≈ 30 s stall rehearsals of `make test` lost in a test or two of every run, wherever a test
first decoded a topic (docs/PERFORMANCE.md, "Stop 41").
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, topic_record_subject_name_strategy
from confluent_kafka.schema_registry.avro import AvroDeserializer

TIMEOUT_S = 30
SLOW_S = 5.0
SUBJECTS = {
    "subject.name.strategy": topic_record_subject_name_strategy
}  # <topic>-<record name>, as tradecore registers


class _Timed(SchemaRegistryClient):  # type: ignore[misc]  # untyped to mypy: confluent_kafka is not followed
    def get_schema(self, *args: Any, **kwargs: Any) -> Schema:
        started = time.monotonic()
        try:
            schema: Schema = super().get_schema(*args, **kwargs)
            return schema
        finally:
            if (took := time.monotonic() - started) > SLOW_S:
                warnings.warn(f"the registry took {took:.1f} s to give schema {args or kwargs}", stacklevel=2)


def registry(url: str) -> SchemaRegistryClient:
    return _Timed({"url": url, "timeout": TIMEOUT_S})


def deserializer(url: str, schema_str: str | None = None) -> AvroDeserializer:
    """confluent-kafka's ``AvroDeserializer`` over ``registry(url)``, subjects named as tradecore names them."""
    return AvroDeserializer(registry(url), schema_str, conf=SUBJECTS)
