"""Determinism and snapshots: the day's quotes and prints, mixed with orders, cancels and amends, replayed.

Two venues fed the same stream derive the same events, byte for byte in Avro; a venue restored from a snapshot
taken anywhere mid-stream carries on exactly as one that never stopped.
"""

from __future__ import annotations

import functools
import io
import json
from collections import Counter
from decimal import Decimal
from typing import Any

import fastavro
import pytest

from domain.venue.errors import SnapshotError
from domain.venue.venue import SimulatedVenue
from schemas import avsc, codec
from schemas.events import (
    CancelRejected,
    Event,
    Liquidity,
    OrderAmended,
    OrderAmendRejected,
    OrderCancelled,
    OrderExpired,
    OrderFilled,
    Side,
    TimeInForce,
)
from tests.domain.venue import market as m

EVERY = 97  # orders are sent after every 97th tick


@functools.cache
def stream() -> tuple[Event, ...]:
    """The mixed ticks with, every ``EVERY`` ticks, a resting BUY and SELL five dollars off the touch, a MARKET IOC,
    a marketable FOK; and now and then a cancel, an amend (quantity, or a price at the touch), a refused amend."""
    events: list[Event] = []
    requests: dict[str, int] = {}

    def request(order_id: str) -> int:
        """The request's place in the order's stream, as risk numbers it: after the accept, one more each."""
        requests[order_id] = requests.get(order_id, 1) + 1
        return requests[order_id]

    bid = ask = None
    for i, tick in enumerate(m.mixed_ticks()):
        events.append(tick)
        bid, ask = tick.bid or bid, tick.ask or ask
        if i % EVERY or bid is None or ask is None:
            continue
        n, at = i // EVERY, tick.envelope.occurred_at
        side = Side.BUY if n % 2 else Side.SELL
        events += [
            m.accepted(f"bid-{n}", Side.BUY, "1", limit=bid - 5, at=at),
            m.accepted(f"ask-{n}", Side.SELL, "1", limit=ask + 5, at=at),
            m.accepted(f"mkt-{n}", side, "0.05", at=at, tif=TimeInForce.IOC),
            m.accepted(f"fok-{n}", side, "0.02", limit=ask if side is Side.BUY else bid, at=at, tif=TimeInForce.FOK),
        ]
        if n % 3 == 1:
            events.append(m.cancel(f"bid-{n - 1}", at=at, sequence=request(f"bid-{n - 1}")))
        if n % 3 == 2:
            events.append(m.amend(f"ask-{n - 1}", quantity="1.5", at=at, sequence=request(f"ask-{n - 1}")))
            events.append(m.amend(f"bid-{n - 2}", limit=ask, at=at, sequence=request(f"bid-{n - 2}")))
            events.append(m.amend(f"mkt-{n}", quantity="1", at=at, sequence=request(f"mkt-{n}")))
    return tuple(events)


def run(venue: SimulatedVenue, events: tuple[Event, ...]) -> list[Event]:
    return m.run(venue, events)


@functools.cache
def _parsed(name: str) -> Any:
    return fastavro.parse_schema(avsc.expanded(name))


def avro(event: Event) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _parsed(type(event).__name__), codec.to_avro(event))
    return out.getvalue()


def test_the_stream_exercises_every_execution() -> None:
    kinds = Counter(type(e) for e in run(m.venue(), stream()))
    expected = {OrderFilled, OrderExpired, OrderCancelled, CancelRejected, OrderAmended, OrderAmendRejected}
    assert expected <= set(kinds), kinds
    fills = [e for e in run(m.venue(), stream()) if isinstance(e, OrderFilled)]
    assert {f.liquidity for f in fills} == {Liquidity.MAKER, Liquidity.TAKER}
    assert any(not f.is_final for f in fills) and any(f.is_final for f in fills)


def test_two_venues_fed_the_same_stream_derive_byte_identical_events() -> None:
    first, second = run(m.venue(), stream()), run(m.venue(), stream())

    assert first == second
    assert [avro(e) for e in first] == [avro(e) for e in second]


def test_each_derived_event_is_stamped_from_its_trigger_with_gap_free_sequences_per_order() -> None:
    venue = m.venue()
    derived: list[Event] = []
    for trigger in stream():
        for event in venue.handle(trigger):
            assert event.envelope.occurred_at == trigger.envelope.occurred_at
            assert event.envelope.recorded_at == trigger.envelope.recorded_at
            assert event.envelope.correlation_id == trigger.envelope.correlation_id
            assert event.envelope.causation_id == str(trigger.envelope.event_id)
            derived.append(event)

    per_order: dict[str, list[int]] = {}
    for event in derived:
        assert event.envelope.aggregate_id == event.order_id  # type: ignore[attr-defined]
        per_order.setdefault(event.envelope.aggregate_id, []).append(event.envelope.sequence)
    assert all(seq == list(range(1, len(seq) + 1)) for seq in per_order.values())
    assert len({e.envelope.event_id for e in derived}) == len(derived)


@pytest.mark.parametrize("cut", [1 / 5, 1 / 2, 4 / 5])
def test_a_venue_restored_from_a_snapshot_mid_stream_carries_on_as_if_it_never_stopped(cut: float) -> None:
    events = stream()
    at = int(len(events) * cut)
    whole = m.venue()
    expected = run(whole, events)

    before = m.venue()
    derived = run(before, events[:at])
    assert before.book.resting, "the cut falls while orders are resting"
    snapshot = before.to_snapshot()
    after = SimulatedVenue.from_snapshot(snapshot, m.BTCUSDT, m.CONFIG)
    assert after.to_snapshot() == snapshot
    derived += run(after, events[at:])

    assert derived == expected
    assert [avro(e) for e in derived] == [avro(e) for e in expected]
    assert after.to_snapshot() == whole.to_snapshot()


def test_the_snapshot_is_sorted_compact_json_with_decimals_as_strings() -> None:
    venue = m.venue()
    run(venue, stream()[: len(stream()) // 2])
    snapshot = venue.to_snapshot()

    parsed = json.loads(snapshot)
    assert snapshot == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    resting = parsed["venue"]["resting"]
    assert resting and all(isinstance(o["quantity"], str) and isinstance(o["filled"], str) for o in resting)
    assert {Decimal(o["limit_price"]) for o in resting} == {o.limit_price for o in venue.book.resting.values()}
    assert isinstance(parsed["venue"]["touch"]["ask"]["price"], str)
    assert parsed["sequences"] == venue.sequences.last


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not json", "is JSON"),
        (b"[]", "not a venue snapshot of format 2"),
        (b'{"format": 3}', "not a venue snapshot of format 2"),
        # Format 1 had no times to forget finished orders by: refused, so the host replays the log instead.
        (b'{"format": 1, "sequences": {}, "venue": {"instrument": "BTCUSDT"}}', "not a venue snapshot of format 2"),
        (b'{"format": 2, "sequences": {"o": "1"}, "venue": {}}', "map of order id to last sequence"),
        (b'{"format": 2, "sequences": {}, "venue": {"instrument": "XBTUSD"}}', "'XBTUSD' cannot restore BTCUSDT"),
        (b'{"format": 2, "sequences": {}, "venue": {"instrument": "BTCUSDT"}}', "KeyError"),
    ],
)
def test_a_snapshot_that_is_not_one_of_this_instrument_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(SnapshotError, match=message):
        SimulatedVenue.from_snapshot(data, m.BTCUSDT, m.CONFIG)
