"""A host's fetcher whose consumers ask no broker anything: what a unit test of its bookkeeping needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.host.config import HostConfig
from streams.host.fetch import Fetcher
from streams.host.inputs import Inputs
from streams.kafka import KafkaSettings, consumer
from streams.metrics import ProcessorMetrics


@pytest.fixture
def fetcher(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fetcher]:
    # (no broker is asked anything: subscribing only records the wish)
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    # librdkafka still tries the address, and would print each refused connection into the test run's output.
    monkeypatch.setattr(
        "streams.host.fetch.consumer", lambda *args, **overrides: consumer(*args, **overrides, log_level=0)
    )
    made = Fetcher(
        settings,
        "risk-group",
        HostConfig(),
        Inputs("", ["orders"], []),
        ProcessorMetrics("risk", "", ""),
        on_assigned=lambda _: None,
        on_revoked=lambda _: None,
    )
    real = made.group
    yield made
    real.close()
