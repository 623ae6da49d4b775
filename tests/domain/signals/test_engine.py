"""The engine emits exactly the crossings an independent computation finds, stamped deterministically."""

from __future__ import annotations

import io
import math
from collections import Counter, defaultdict
from typing import Any

import fastavro
import numpy as np
import pytest

from domain.derive import derived_envelope
from domain.signals import SignalConfig, SignalEngine
from schemas import codec
from schemas.events import SignalGenerated, TickIngested
from tests.domain.signals import reference
from tests.domain.signals.market import CASES, WHOLE_FEEDS, Case
from tests.domain.signals.replay import config, emitted, expected, expected_signals, signals_by_bar

pytestmark = WHOLE_FEEDS

RTOL = 1e-9
# strength is a score in [0, 1], often a small difference of two nearly equal averages over the ATR; its error is
# bounded in absolute terms (a few ulps of the price over the ATR), not relative to a value that may be ~0.
STRENGTH_ATOL = 1e-9
BY_NAME = {case.name: case for case in CASES}
# Bar index of the first bar on which each default indicator can signal: warmed up, a side seen on an earlier bar,
# and (all but RSI) the ATR(14) warmed up, which takes 15 bars.
FIRST_SIGNAL_BAR = {"ema_cross(12,26)": 26, "rsi(14)": 15, "bollinger(20,2)": 20, "vwap": 14}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_signals_are_the_crossings_an_independent_computation_finds(case: Case) -> None:
    got = emitted(case.name)
    want = expected_signals(case)

    assert want, "the real data must make some crossings, or this test proves nothing"
    assert [(bar, s.indicator, s.direction.value) for bar, s in got] == [w[:3] for w in want]

    found = expected(case.name)
    np.testing.assert_allclose([s.strength for _, s in got], [w[3] for w in want], rtol=0, atol=STRENGTH_ATOL)
    row_of = {start: i for i, start in enumerate(found.bars["start_us"].to_list())}
    rows = np.array([row_of[bar] for bar, _ in got])
    for name, series in found.values.items():
        warmed = ~np.isnan(series[rows])
        # Present exactly when warmed up, and then equal to the reference.
        assert [name in s.values for _, s in got] == warmed.tolist(), name
        values = [s.values[name] for _, s in got if name in s.values]
        np.testing.assert_allclose(values, series[rows][warmed], rtol=RTOL, atol=0, err_msg=name)


def test_the_real_data_exercises_every_kind_of_signal() -> None:
    kinds: Counter[tuple[str, str]] = Counter()
    for case in CASES:
        kinds.update((indicator, direction) for _, indicator, direction, _ in expected_signals(case))
    assert set(kinds) == {(name, side) for name in FIRST_SIGNAL_BAR for side in ("LONG", "SHORT")}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_nothing_is_signalled_before_its_indicator_is_warmed_up(case: Case) -> None:
    got = emitted(case.name)
    index_of = {start: i for i, start in enumerate(expected(case.name).bars["start_us"].to_list())}

    first: dict[str, int] = {}
    for bar, signal in got:
        first.setdefault(signal.indicator, index_of[bar])
    assert all(first[name] >= FIRST_SIGNAL_BAR[name] for name in first), first


def test_a_feed_shorter_than_the_warm_up_emits_nothing() -> None:
    case = BY_NAME["ftx-btcperp-1m"]
    ticks = case.feed.ticks[: 4 * 15]  # 15 one-minute bars of 4 prints: ATR(14) and RSI(14) are just not there
    engine = SignalEngine(config(case))
    assert [signal for tick in ticks for signal in engine.handle(tick)] == []


def test_signals_are_stamped_by_streams_derive_from_the_tick_that_closed_the_bar() -> None:
    case = BY_NAME["binance-btcusdt-100ms"]
    ticks = case.feed.ticks
    by_id = {str(tick.envelope.event_id): tick for tick in ticks}
    signals = [signal for _, signal in signals_by_bar(SignalEngine(config(case)), ticks, case.interval_us)]

    for sequence, signal in enumerate(signals, start=1):
        assert signal.envelope.causation_id is not None
        trigger = by_id[signal.envelope.causation_id]
        assert signal.envelope == derived_envelope(SignalGenerated, trigger, trigger.instrument, sequence)
        assert signal.instrument == signal.key == trigger.instrument
    assert len({signal.envelope.event_id for signal in signals}) == len(signals)


SIGNAL_SCHEMA = fastavro.parse_schema(SignalGenerated.schema())


def avro_bytes(event: SignalGenerated) -> bytes:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SIGNAL_SCHEMA, codec.to_avro(event))
    return buffer.getvalue()


def from_avro_bytes(data: bytes) -> SignalGenerated:
    record: Any = fastavro.schemaless_reader(io.BytesIO(data), SIGNAL_SCHEMA, SIGNAL_SCHEMA)
    return codec.from_avro(SignalGenerated, record)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_same_ticks_give_byte_identical_signals_that_fit_the_contract(case: Case) -> None:
    first = [avro_bytes(s) for _, s in emitted(case.name)]
    again = [avro_bytes(s) for _, s in signals_by_bar(SignalEngine(config(case)), case.feed.ticks, case.interval_us)]

    assert first == again
    for data in first[:50]:
        assert avro_bytes(from_avro_bytes(data)) == data


@pytest.mark.parametrize("case", CASES, ids=str)
def test_strengths_are_scores_in_the_unit_interval_and_values_are_finite(case: Case) -> None:
    for _, signal in emitted(case.name):
        assert 0.0 <= signal.strength <= 1.0
        assert all(math.isfinite(value) for value in signal.values.values())


def test_instruments_keep_their_own_state_and_sequences() -> None:
    cases = [BY_NAME["binance-btcusdt-1s"], BY_NAME["histdata-eurusd-1s"]]
    alone = {
        case.feed.instrument: [s for _, s in signals_by_bar(SignalEngine(config(case)), case.feed.ticks, 1_000_000)]
        for case in cases
    }
    interleaved: list[TickIngested] = []
    binance, eurusd = (case.feed.ticks for case in cases)
    for i in range(max(len(binance), len(eurusd))):
        interleaved.extend(ticks[i] for ticks in (binance, eurusd) if i < len(ticks))

    engine = SignalEngine(SignalConfig())
    together: defaultdict[str, list[SignalGenerated]] = defaultdict(list)
    for tick in interleaved:
        for signal in engine.handle(tick):
            together[signal.instrument].append(signal)

    assert together == alone
    assert engine.sequences.last == {name: len(signals) for name, signals in alone.items()}


def test_a_crossing_during_the_atr_warm_up_is_not_signalled_later() -> None:
    case = BY_NAME["ftx-btcperp-1m"]
    ticks, frame = case.feed.ticks[: 4 * 200], case.feed.frame[: 4 * 200]  # 200 one-minute bars
    short = SignalConfig(bar_interval=case.bar_interval, ema_fast=2, ema_slow=3, atr_period=40)
    got = signals_by_bar(SignalEngine(short), ticks, case.interval_us)
    want = reference.expected(frame, interval_us=case.interval_us, ema_fast=2, ema_slow=3, atr_period=40)
    starts = want.bars["start_us"].to_list()

    ema = [(start, "ema_cross(2,3)") for start, name, *_ in want.signals if name == "ema_cross(2,3)"]
    crossed_early = reference.crossings(want.values["ema_fast"], want.values["ema_slow"])[:40]
    assert np.count_nonzero(crossed_early) > 0  # the EMAs crossed while ATR(40) warmed up (bars 0 to 40)
    assert min(starts.index(start) for start, _ in ema) >= 40
    assert [(bar, s.indicator) for bar, s in got if s.indicator == "ema_cross(2,3)"] == [
        signal for signal in ema if signal[0] != starts[-1]
    ]
