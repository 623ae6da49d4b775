"""Snapshots: deterministic bytes; an engine restored from one continues exactly as if never stopped."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from domain.signals import SignalConfig, SignalEngine, SnapshotError
from schemas.events import SignalGenerated, TickIngested
from tests.domain.signals.market import CASES, WHOLE_FEEDS, Case
from tests.domain.signals.replay import config, emitted

pytestmark = WHOLE_FEEDS


def run(engine: SignalEngine, ticks: list[TickIngested]) -> list[SignalGenerated]:
    return [signal for tick in ticks for signal in engine.handle(tick)]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_an_engine_restored_from_a_snapshot_continues_with_identical_signals(case: Case) -> None:
    ticks = case.feed.ticks
    uninterrupted = [signal for _, signal in emitted(case.name)]
    # Anywhere: before any bar closed, mid-bar, deep into the stream, on the last tick.
    cuts = sorted({1, 2, len(ticks) // 3 + 1, len(ticks) // 2, 2 * len(ticks) // 3 + 3, len(ticks) - 1})

    engine = SignalEngine(config(case))
    signals: list[SignalGenerated] = []
    done = 0
    for cut in cuts:
        signals += run(engine, ticks[done:cut])
        snapshot = engine.to_snapshot()
        engine = SignalEngine.from_snapshot(snapshot)
        assert engine.to_snapshot() == snapshot
        done = cut
    signals += run(engine, ticks[done:])

    assert signals == uninterrupted


def test_the_same_state_gives_the_same_bytes_whatever_order_instruments_first_appeared_in() -> None:
    one, other = (case.feed.ticks[:3000] for case in CASES if case.bar_interval == timedelta(seconds=1))
    first = SignalEngine(SignalConfig())
    second = SignalEngine(SignalConfig())
    run(first, one + other)
    run(second, other + one)

    assert first.to_snapshot() == second.to_snapshot()


def test_a_snapshot_carries_the_config_it_was_taken_under() -> None:
    custom = SignalConfig(bar_interval=timedelta(milliseconds=250), ema_fast=5, ema_slow=9, bollinger_width=2.5)
    assert SignalEngine.from_snapshot(SignalEngine(custom).to_snapshot()).config == custom


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe not json",
        b"[1, 2, 3]",
        json.dumps({"format": "something.else", "version": 1}).encode(),
        json.dumps({"format": "tradecore.signals.engine", "version": 99}).encode(),
        json.dumps({"format": "tradecore.signals.engine", "version": 1, "config": {}}).encode(),
    ],
    ids=["empty", "not-json", "not-an-object", "other-format", "future-version", "damaged"],
)
def test_what_is_not_a_readable_snapshot_is_refused_with_a_reason(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        SignalEngine.from_snapshot(data)


def test_a_snapshot_with_damaged_instrument_state_is_refused() -> None:
    engine = SignalEngine(SignalConfig())
    run(engine, CASES[1].feed.ticks[:500])
    document = json.loads(engine.to_snapshot())
    for state in document["instruments"].values():
        state["crossings"] = state["crossings"][:-1]

    with pytest.raises(SnapshotError, match="crossing"):
        SignalEngine.from_snapshot(json.dumps(document).encode())


def test_the_state_does_not_grow_with_the_ticks_taken() -> None:
    """Per instrument, the open bar and each indicator's window: a tenth of the feed or all of it, the same size."""
    case = CASES[0]
    ticks = case.feed.ticks
    early, late = SignalEngine(config(case)), SignalEngine(config(case))
    run(early, ticks[: len(ticks) // 10])
    run(late, ticks)

    assert len(ticks) >= 2_000
    assert len(late.to_snapshot()) <= 1.1 * len(early.to_snapshot())
