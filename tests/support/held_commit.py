"""A real transactional producer whose first commit of an ``orders`` offset is held in ``send_offsets_to_transaction``
until the test lets it go: what a slow broker (or, held past ``SETTLE_S``, a stuck librdkafka call) does to the host's
commit. Everything else is the real producer against the real broker."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Producer

from streams.kafka import clients, transactions
from streams.settings import KafkaSettings


class _HeldOnOrders:
    def __init__(self, real: Producer, released: threading.Event, held: list[str]) -> None:
        self._real = real
        self._released = released
        self._held = held

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def send_offsets_to_transaction(self, positions: list[Any], *args: Any) -> None:
        if not self._held and any(p.topic.endswith(".orders") for p in positions):
            self._held.append(str(positions))
            self._released.wait()
        self._real.send_offsets_to_transaction(positions, *args)


@contextlib.contextmanager
def first_orders_commit_held(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event, list[str]]]:
    """The producers the host makes, the first of them held as above: the event that lets it go on, and what it was
    committing once it is held. Let go when the block ends."""
    released, held = threading.Event(), list[str]()

    def producer(settings: KafkaSettings, **overrides: Any) -> Any:
        real = clients.producer(settings, **overrides)
        return real if held else _HeldOnOrders(real, released, held)

    monkeypatch.setattr(transactions, "producer", producer)
    try:
        yield released, held
    finally:
        released.set()
