"""Event logs of any size for the read-side benchmarks, built as frames and written with the batch encoder.

A template hour of trading — the recorded Binance BTCUSDT quotes (data/market) as ``TickIngested``, and per order
an ``OrderPlaced``, ``OrderAccepted``, ``OrderFilled`` and ``PositionChanged`` (``--accounts`` accounts), a
``SignalGenerated`` every 50 orders, each account's ``RiskLimitsSet`` — is built record by record once, decoded
into frames, then replicated with every time shifted by a lap and every id made anew per lap (columns, not
records), and encoded per event type with ``schemas.batch.BatchEncoder``. No big file is added: volume comes from
replication.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from schemas import avsc
from schemas.batch import INDEX, BatchDecoder, BatchEncoder
from schemas.batch.registry import schema_id
from schemas.codec import to_avro
from schemas.events import EVENT_TYPES, Event, TickIngested
from streams import kafka
from streams.ingest.recorded import market_file
from streams.settings import KafkaSettings
from tests.schemas.batch.reference import SCHEMA_IDS, framed, writers
from tests.support import events as build

QUOTES = market_file("binance-btcusdt-quotes-2021-01-08.parquet")
_ORDER_IDS = ("order_id", "client_order_id", "fill_id")  # made anew per lap (with the envelope's aggregate_id)


def template(accounts: int) -> list[Event]:
    """One lap: every recorded quote as a tick, an order for every fourth quote, in event-time order."""
    quotes = pl.read_parquet(QUOTES).sort("timestamp").to_dicts()
    sequences: dict[str, int] = {}
    out: list[Event] = []

    def env(cls: type[Event], aggregate: str, at: Any, cause: str | None = None) -> Any:
        sequences[aggregate] = sequences.get(aggregate, 0) + 1
        return build.envelope(
            cls,
            event_id=uuid.uuid4(),
            occurred_at=at,
            recorded_at=at,
            aggregate_id=aggregate,
            sequence=sequences[aggregate],
            correlation_id=f"c-{aggregate}",
            causation_id=cause,
        )

    start = quotes[0]["timestamp"]
    for a in range(accounts):
        account = f"ACC-{a}"
        out.append(
            build.risk_limits_set(envelope=env(type(build.risk_limits_set()), account, start), account_id=account)
        )
    position: dict[str, Decimal] = {}
    for q, quote in enumerate(quotes):
        at = quote["timestamp"]
        bid, ask = _price(quote["bid"]), _price(quote["ask"])
        out.append(
            build.tick_ingested(
                envelope=env(TickIngested, "BTCUSDT", at),
                bid=bid,
                ask=ask,
                bid_size=_price(quote["bid_size"]),
                ask_size=_price(quote["ask_size"]),
                exchange_ts=at,
            )
        )
        if q % 4:
            continue
        i = q // 4
        account, order_id, quantity = f"ACC-{i % accounts}", f"ord-{i}", Decimal("0.01000000")
        placed = build.order_placed(
            envelope=env(type(build.order_placed()), order_id, at), order_id=order_id, account_id=account,
            client_order_id=f"cl-{i}", quantity=quantity,
        )  # fmt: skip
        accepted = build.order_accepted(
            envelope=env(type(build.order_accepted()), order_id, at, str(placed.envelope.event_id)),
            order_id=order_id, account_id=account, client_order_id=f"cl-{i}", quantity=quantity,
        )  # fmt: skip
        filled = build.order_filled(
            envelope=env(type(build.order_filled()), order_id, at, str(accepted.envelope.event_id)),
            order_id=order_id, account_id=account, fill_id=f"fill-{i}", fill_quantity=quantity,
            cumulative_quantity=quantity, leaves_quantity=Decimal("0E-8"), fill_price=ask, is_final=True,
        )  # fmt: skip
        position[account] = position.get(account, Decimal(0)) + quantity
        changed = build.position_changed(
            envelope=env(type(build.position_changed()), account, at, str(filled.envelope.event_id)),
            account_id=account, quantity=position[account], average_price=ask, fill_id=f"fill-{i}",
        )  # fmt: skip
        out += [placed, accepted, filled, changed]
        if i % 50 == 0:
            out.append(build.signal_generated(envelope=env(type(build.signal_generated()), "BTCUSDT", at)))
    return out


def _price(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.00000001"))


def frames(events: list[Event]) -> dict[str, pl.DataFrame]:
    """The template as the batch decoder's frames, one per event type."""
    values = [framed(avsc.expanded(type(e).__name__), to_avro(e), SCHEMA_IDS[type(e).__name__]) for e in events]
    return {
        name: frame.drop(INDEX)
        for name, frame in BatchDecoder(writers(), EVENT_TYPES.values()).decode(values).frames.items()
    }


def lap(name: str, frame: pl.DataFrame, k: int, shift: timedelta, step: int) -> pl.DataFrame:
    """Lap ``k`` of event ``name``'s template frame: times moved by ``k * shift``, event ids and order/fill ids made
    anew; an order's aggregate is new each lap, the others' (an instrument, an account) go on ``step`` sequences
    further each lap."""
    moved = k * shift
    code = sorted(EVENT_TYPES).index(name)
    env = pl.col("envelope").struct
    renamed = [pl.col(c) + f"-{k}" for c in _ORDER_IDS if c in frame.columns]
    times = [pl.col(c) + moved for c, t in frame.schema.items() if isinstance(t, pl.Datetime)]
    per_order = name in ("OrderPlaced", "OrderAccepted", "OrderFilled")
    envelope = pl.struct(
        pl.format("{}-{}-4000-8000-{}", pl.lit(f"{k:08x}"), pl.lit(f"{code:04x}"),
                  pl.int_range(pl.len()).cast(pl.String).str.zfill(12)).alias("event_id"),
        env.field("event_type"),
        (env.field("occurred_at") + moved).alias("occurred_at"),
        (env.field("recorded_at") + moved).alias("recorded_at"),
        env.field("correlation_id"),
        env.field("causation_id"),
        (env.field("aggregate_id") + f"-{k}") if per_order else env.field("aggregate_id"),
        env.field("sequence") if per_order else env.field("sequence") + k * step,
        env.field("schema_version"),
    ).alias("envelope")  # fmt: skip
    return frame.with_columns(*renamed, *times, envelope)


Chunk = tuple[str, list[bytes], list[bytes], list[int]]  # topic, keys, values, timestamps (ms, event time)


def values(events: int, accounts: int, client: Any, prefix: str) -> Iterator[Chunk]:
    """About ``events`` events as (topic, keys, values, timestamps) chunks, one per event type per lap, in lap order."""
    one = template(accounts)
    laps = max(1, round(events / len(one)))
    found = frames(one)
    span = max(f["envelope"].struct.field("occurred_at").max() for f in found.values())  # type: ignore[type-var]
    first = min(f["envelope"].struct.field("occurred_at").min() for f in found.values())  # type: ignore[type-var]
    shift: timedelta = (span - first) + timedelta(seconds=1)  # type: ignore[operator,assignment]
    encoders = {
        name: BatchEncoder(EVENT_TYPES[name], schema_id(client, EVENT_TYPES[name], topic_prefix=prefix))
        for name in found
    }
    for k in range(laps):
        for name, frame in found.items():
            route = EVENT_TYPES[name].route()
            moved = lap(name, frame, k, shift, len(one))
            keys = [key.encode() for key in moved[route.key].to_list()]
            stamps = moved["envelope"].struct.field("occurred_at").dt.epoch("ms").to_list()
            yield route.topic, keys, encoders[name].encode(moved), stamps


def produce(settings: KafkaSettings, chunks: Iterator[Chunk]) -> int:
    """Write the chunks with one idempotent producer; the count written."""
    producer = kafka.producer(settings, **{"linger.ms": 20, "batch.num.messages": 10_000})
    count = 0
    for topic, keys, vals, stamps in chunks:
        for key, value, stamp in zip(keys, vals, stamps, strict=True):
            while True:
                try:
                    producer.produce(settings.topic_prefix + topic, key=key, value=value, timestamp=stamp)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
        count += len(vals)
    assert producer.flush(120) == 0
    return count
