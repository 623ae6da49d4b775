"""Where the host places each input record among the others: by its event's time, to the microsecond."""

from datetime import UTC, datetime, timedelta

import polars as pl

from commands import decide
from commands.models import PlaceOrder
from streams.host.decoding import Decoded
from streams.host.inputs import Inputs
from streams.kafka.logreader import RawRecord
from tests.support.market_log import QUOTES, quote_tick

TICK_AT = datetime(2021, 1, 8, 0, 0, 1, 76000, tzinfo=UTC)


def record(topic: str, at: datetime, offset: int = 0) -> RawRecord:
    """A record as the producers write it: its Kafka timestamp the event time cut to the millisecond."""
    return RawRecord(topic, 0, offset, int(at.timestamp() * 1000), b"k", b"v")


def order_at(at: datetime) -> Decoded:
    body = {
        "account_id": "ACC-1",
        "client_order_id": "c-1",
        "instrument": "BTCUSDT",
        "side": "BUY",
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": "0.01",
        "limit_price": "33000",
    }
    event = decide.place_order(PlaceOrder.model_validate(body), decide.Stamp(at, "corr-1"))
    return Decoded(record("t.orders", at), event)


def test_an_order_85_microseconds_after_a_tick_of_the_same_millisecond_comes_after_it() -> None:
    inputs = Inputs("t.", ["orders"], ["ticks"])
    quote = pl.read_parquet(QUOTES).row(0, named=True)
    tick = Decoded(record("t.ticks", TICK_AT), quote_tick(quote, TICK_AT, 1))
    order = order_at(TICK_AT + timedelta(microseconds=85))
    assert tick.record.timestamp_ms == order.record.timestamp_ms  # Kafka's timestamps tie, and orders rank first
    merger = inputs.merger({(0, 0), (1, 0)})
    merger.add(inputs.stamped(order))
    merger.add(inputs.stamped(tick))
    assert [s.item for s in merger.release(lambda _source: True)] == [tick, order]


def test_a_record_that_did_not_decode_keeps_its_kafka_timestamps_place() -> None:
    inputs = Inputs("t.", ["orders"], ["ticks"])
    bad = Decoded(record("t.orders", TICK_AT), None, "t.orders: truncated")
    later = order_at(TICK_AT + timedelta(microseconds=1))
    assert inputs.stamped(bad) < inputs.stamped(later)
    assert inputs.stamped(bad).timestamp == (TICK_AT - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
