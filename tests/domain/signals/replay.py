"""Driving the engine over a feed, and what the independent reference says it should emit."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from domain.signals import SignalConfig, SignalEngine
from schemas.events import SignalGenerated, TickIngested
from tests.domain.signals import reference
from tests.domain.signals.market import CASES, Case

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def config(case: Case) -> SignalConfig:
    return SignalConfig(bar_interval=case.bar_interval)


def bar_start(tick: TickIngested, interval_us: int) -> int:
    us = (tick.exchange_ts - EPOCH) // timedelta(microseconds=1)
    return us - us % interval_us


def signals_by_bar(
    engine: SignalEngine, ticks: Iterable[TickIngested], interval_us: int
) -> list[tuple[int, SignalGenerated]]:
    """Every signal ``engine`` emits for ``ticks``, with the start of the bar it was computed on.

    That is the bar of the tick before the trigger: a signal is emitted by the first tick of the next bar.
    """
    out: list[tuple[int, SignalGenerated]] = []
    previous: int | None = None
    for tick in ticks:
        for signal in engine.handle(tick):
            assert previous is not None
            out.append((previous, signal))
        previous = bar_start(tick, interval_us)
    return out


@functools.cache
def expected(name: str) -> reference.Expected:
    case = next(case for case in CASES if case.name == name)
    return reference.expected(case.feed.frame, interval_us=case.interval_us)


def expected_signals(case: Case) -> list[tuple[int, str, str, float]]:
    """The reference's signals, less those of the last bar: no later tick comes to close it."""
    found = expected(case.name)
    last_bar = found.bars["start_us"][-1]
    return [signal for signal in found.signals if signal[0] != last_bar]


@functools.cache
def emitted(name: str) -> tuple[tuple[int, SignalGenerated], ...]:
    """What a fresh engine emits over the whole feed of case ``name`` (computed once per test session)."""
    case = next(case for case in CASES if case.name == name)
    return tuple(signals_by_bar(SignalEngine(config(case)), case.feed.ticks, case.interval_us))
