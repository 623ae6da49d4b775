"""The pure write-side decisions: same command, same event — which is what makes a retry harmless."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from commands import decide
from commands.models import IngestTicks, PlaceOrder
from domain import derive
from domain.errors import InstrumentsFileError
from domain.instruments import InstrumentRegistry
from schemas.events import OrderPlaced

AT = datetime(2021, 1, 8, 0, 0, 1, 76000, tzinfo=UTC)
PLACE = PlaceOrder.model_validate(
    {
        "account_id": "ACC-1",
        "client_order_id": "c-1",
        "instrument": "BTCUSDT",
        "side": "SELL",
        "order_type": "LIMIT",
        "quantity": "0.25",
        "limit_price": "39433.62",
    }
)


def test_placing_the_same_order_twice_decides_the_same_event() -> None:
    first = decide.place_order(PLACE, decide.Stamp(AT, "corr-1"))
    again = decide.place_order(PLACE, decide.Stamp(AT, "corr-1"))
    assert first == again
    assert isinstance(first, OrderPlaced)
    assert first.envelope.sequence == 1 and first.envelope.aggregate_id == first.order_id
    assert first.order_id == decide.order_id_for("ACC-1", "c-1")
    assert decide.order_id_for("ACC-1", "c-2") != first.order_id
    assert decide.order_id_for("ACC-2", "c-1") != first.order_id


def test_event_ids_follow_the_stream_position() -> None:
    a = derive.event_id_for(OrderPlaced, "agg", 1)
    assert a == derive.event_id_for(OrderPlaced, "agg", 1)
    assert a != derive.event_id_for(OrderPlaced, "agg", 2)


def test_ticks_are_numbered_per_instrument_and_keep_venue_time() -> None:
    ticks = IngestTicks.model_validate(
        {
            "source": "f",
            "ticks": [
                {"instrument": "EURUSD", "bid": "1.1", "exchange_ts": "2020-01-01T17:00:00.000065Z"},
                {"instrument": "USDJPY", "bid": "86.655", "exchange_ts": "2013-01-01T22:00:00Z"},
                {"instrument": "EURUSD", "ask": "1.2", "exchange_ts": "2020-01-01T17:00:10.447Z"},
            ],
        }
    )
    registry = InstrumentRegistry.from_file()
    events = decide.ingest_ticks(ticks, registry, {"EURUSD": 41, "USDJPY": 7}, decide.Stamp(AT, "c"))
    assert [(e.instrument, e.envelope.sequence) for e in events] == [("EURUSD", 41), ("USDJPY", 7), ("EURUSD", 42)]
    assert events[0].envelope.occurred_at == datetime(2020, 1, 1, 17, 0, 0, 65, tzinfo=UTC)
    assert events[0].envelope.recorded_at == AT
    assert events[1].venue == "TRUEFX" and events[1].bid == Decimal("86.655")


def test_a_tick_given_in_another_offset_is_kept_as_the_same_instant_in_utc() -> None:
    ticks = IngestTicks.model_validate(
        {"ticks": [{"instrument": "EURUSD", "bid": "1.1", "exchange_ts": "2020-01-01T19:00:00.000065+02:00"}]}
    )
    [event] = decide.ingest_ticks(ticks, InstrumentRegistry.from_file(), {"EURUSD": 1}, decide.Stamp(AT, "c"))
    utc = datetime(2020, 1, 1, 17, 0, 0, 65, tzinfo=UTC)
    assert (event.exchange_ts, event.envelope.occurred_at) == (utc, utc)
    assert event.exchange_ts.utcoffset() == timedelta(0)  # what the Avro encoder requires of a timestamp


def test_a_broken_instruments_file_is_named(tmp_path: Path) -> None:
    broken = tmp_path / "instruments.toml"
    broken.write_text('[[instrument]]\nsymbol = "X"\nvenue = "V"\n')
    with pytest.raises(InstrumentsFileError, match="instrument X lacks tick_size"):
        InstrumentRegistry.from_file(broken)
    broken.write_text(
        '[[instrument]]\nsymbol = "X"\nvenue = "V"\nbase="a"\nquote="b"\ntick_size="wide"\n'
        'lot_size="1"\nmin_quantity="1"\nmax_quantity="2"\n'
    )
    with pytest.raises(InstrumentsFileError, match="not a decimal"):
        InstrumentRegistry.from_file(broken)
