"""A host's fetcher whose consumers ask no broker anything: what a unit test of its bookkeeping needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from streams.host.config import HostConfig
from streams.host.fetch import Fetcher
from streams.host.inputs import Inputs
from streams.kafka import KafkaSettings
from streams.metrics import ProcessorMetrics


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    # (no broker is asked anything: subscribing only records the wish)
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")
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
