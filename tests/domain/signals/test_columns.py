"""The engine folding a batch of ticks as columns leaves the state and emits the signals, byte for byte, that it
does tick by tick: on every recorded feed cut into batches, and on drawn feeds with late, unpriced and trade ticks,
several instruments interleaved, extreme decimals, and a snapshot taken and restored between batches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.signals import SignalConfig, SignalEngine
from domain.signals.frames import by_instrument
from schemas import codec
from schemas.events import Envelope, SignalGenerated, TickIngested, new_envelope
from tests.domain.signals.market import CASES, WHOLE_FEEDS, Case
from tests.domain.signals.replay import config
from tests.support.properties import example_count

DECIMAL = pl.Decimal(18, 8)
PRICES = ("bid", "ask", "last", "last_size")


def frame_of(ticks: Sequence[TickIngested]) -> pl.DataFrame:
    """The columns the host hands a processor for these ticks (``schemas.batch``'s layout of the fields read)."""
    return pl.DataFrame(
        {
            "instrument": [t.instrument for t in ticks],
            "exchange_ts": pl.Series([t.exchange_ts for t in ticks], dtype=pl.Datetime("us", "UTC")),
            **{name: pl.Series([getattr(t, name) for t in ticks], dtype=DECIMAL) for name in PRICES},
        }
    )


def by_ticks(engine: SignalEngine, ticks: Sequence[TickIngested]) -> list[tuple[int, list[SignalGenerated]]]:
    return [(i, found) for i, tick in enumerate(ticks) if (found := engine.handle(tick))]


def by_columns(engine: SignalEngine, ticks: Sequence[TickIngested]) -> list[tuple[int, list[SignalGenerated]]]:
    """What the signals processor does with a frame: each instrument's rows folded at once, rows back in order."""
    found: list[tuple[int, list[SignalGenerated]]] = []
    for instrument, positions, columns in by_instrument(frame_of(ticks)):
        for row, out in engine.handle_columns(
            instrument, columns, lambda rows, positions=positions: [ticks[p] for p in positions[rows].tolist()]
        ):
            assert not isinstance(out, Exception), out
            found.append((int(positions[row]), out))
    return sorted(found, key=lambda item: item[0])


def encoded(found: list[tuple[int, list[SignalGenerated]]]) -> list[tuple[int, list[dict[str, Any]]]]:
    return [(row, [codec.to_avro(signal) for signal in signals]) for row, signals in found]


def in_batches(engine: SignalEngine, ticks: Sequence[TickIngested], sizes: Sequence[int]) -> list[Any]:
    """``ticks`` through ``by_columns`` in batches of ``sizes`` (cycled), the engine snapshotted and restored
    between batches: what a host taking fetches and checkpointing does."""
    out: list[Any] = []
    start, i = 0, 0
    while start < len(ticks):
        size = sizes[i % len(sizes)]
        out += [(start + row, signals) for row, signals in encoded(by_columns(engine, ticks[start : start + size]))]
        engine = SignalEngine.from_snapshot(engine.to_snapshot(), engine.model)
        start, i = start + size, i + 1
    return [out, engine.to_snapshot()]


@WHOLE_FEEDS
@pytest.mark.parametrize("case", CASES, ids=str)
def test_a_recorded_feed_in_batches_gives_the_signals_and_state_of_tick_by_tick(case: Case) -> None:
    ticks = case.feed.ticks
    reference = SignalEngine(config(case))
    expected = [encoded(by_ticks(reference, ticks)), reference.to_snapshot()]
    assert expected[0], "the feed signals something"

    assert in_batches(SignalEngine(config(case)), ticks, [2_000, 1, 777, 50]) == expected


EPOCH = datetime(2024, 3, 1, tzinfo=UTC)
SMALL_PERIODS = SignalConfig(
    bar_interval=timedelta(seconds=1), ema_fast=2, ema_slow=3, rsi_period=2, bollinger_period=2, atr_period=2
)
amounts = st.one_of(
    st.none(),
    st.decimals(min_value=0, max_value=Decimal("9999999999.99999999"), places=8),
    st.sampled_from([Decimal("0E-8"), Decimal("0.00000001"), Decimal("9999999999.99999999")]),
)


def envelope(ts: datetime, instrument: str, i: int) -> Envelope:
    return new_envelope(
        TickIngested,
        event_id=uuid.UUID(int=i),
        occurred_at=ts,
        recorded_at=ts,
        correlation_id=f"c{i}",
        aggregate_id=instrument,
        sequence=i + 1,
    )


@st.composite
def drawn_ticks(draw: st.DrawFn) -> list[TickIngested]:
    """Ticks of up to three instruments, mostly moving forward in time but sometimes back (late ticks), with or
    without a quote or a trade print."""
    count = draw(st.integers(1, 120))
    at_ms = 0
    ticks = []
    for i in range(count):
        at_ms = max(0, at_ms + draw(st.integers(-1_500, 1_500)))
        ts = EPOCH + timedelta(milliseconds=at_ms)
        instrument = draw(st.sampled_from(["BTC", "ETH", "SOL"]))
        ticks.append(
            TickIngested(
                envelope=envelope(ts, instrument, i),
                instrument=instrument,
                venue="test",
                **{name: draw(amounts) for name in PRICES},
                exchange_ts=ts,
                source="drawn",
            )
        )
    return ticks


@given(ticks=drawn_ticks(), sizes=st.lists(st.integers(1, 40), min_size=1, max_size=4))
@settings(max_examples=example_count(200), deadline=None)
def test_drawn_ticks_in_batches_give_the_signals_and_state_of_tick_by_tick(
    ticks: list[TickIngested], sizes: list[int]
) -> None:
    reference = SignalEngine(SMALL_PERIODS)
    expected = [encoded(by_ticks(reference, ticks)), reference.to_snapshot()]

    assert in_batches(SignalEngine(SMALL_PERIODS), ticks, sizes) == expected


def test_late_ticks_are_counted_and_ignored_in_a_batch_as_one_by_one() -> None:
    def tick(second: float, price: str) -> TickIngested:
        ts = EPOCH + timedelta(seconds=second)
        return TickIngested(
            envelope=envelope(ts, "X", int(second * 10)),
            instrument="X",
            venue="test",
            last=Decimal(price),
            exchange_ts=ts,
            source="test",
        )

    ticks = [tick(0.1, "10"), tick(1.2, "11"), tick(0.9, "500"), tick(2.5, "12"), tick(1.9, "1")]
    engine = SignalEngine(SMALL_PERIODS)
    by_columns(engine, ticks)

    assert engine.late_ticks("X") == 2
    state = engine.to_snapshot()
    assert b"500" not in state and b'"1.00000000"' not in state  # the late prices moved no bar
