"""confluent-kafka's own registry client, the tests' independent reference for the wire format.

Bounded: its default timeout is none, and a registry connection that never answers (seen once in a CI rehearsal,
tests/schemas/batch/test_registry.py hanging 16 minutes) would hold the whole suite. A schema look-up that takes
longer than ``SLOW_S`` is said as a warning, which pytest lists for passing tests too: two tests of a rehearsal ran
≈ 30 s over their time, one timeout and a retry of this client or of ``tests.support.independent``'s watermark
look-ups (docs/PERFORMANCE.md, "Stop 38"), and nothing said which.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

TIMEOUT_S = 30
SLOW_S = 5.0


class _Timed(SchemaRegistryClient):
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
