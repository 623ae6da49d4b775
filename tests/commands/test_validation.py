"""Stateless tick validation: an exchange time too far ahead of the server clock, or before Kafka's epoch, is a
violation naming the field (issue 12, F3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from commands.errors import CommandRejected
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from domain.instruments import InstrumentRegistry

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
REGISTRY = InstrumentRegistry.from_file()


def batch(at: datetime) -> IngestTicks:
    return IngestTicks(ticks=[Tick(instrument="EURUSD", bid="1.12120", ask="1.12172", exchange_ts=at)])


def rules(at: datetime, max_ahead: timedelta = timedelta(seconds=5)) -> list[tuple[str, str]]:
    try:
        validate_ticks(batch(at), REGISTRY, now=NOW, max_ahead=max_ahead)
    except CommandRejected as rejected:
        return [(v.field, v.rule) for v in rejected.violations]
    return []


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (NOW, []),
        (NOW + timedelta(seconds=5), []),
        (NOW + timedelta(seconds=5, microseconds=1), [("ticks[0].exchange_ts", "tick.ahead")]),
        (NOW - timedelta(days=3000), []),
        (datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC), [("ticks[0].exchange_ts", "tick.range")]),
    ],
)
def test_exchange_time_bounds(at: datetime, expected: list[tuple[str, str]]) -> None:
    assert rules(at) == expected


def test_the_skew_is_configurable() -> None:
    assert rules(NOW + timedelta(minutes=1), max_ahead=timedelta(minutes=2)) == []
