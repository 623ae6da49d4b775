"""Event-time bars from one instrument's ticks.

A bar covers ``[start, start + interval)`` of the venue's clock (``exchange_ts``), with ``start`` a multiple of the
interval since the Unix epoch, so every worker, replay and backtest cuts the same bars. A tick's price is the mid of
its bid and ask when it has both, else its last trade price; a tick with neither moves no price. Volume and
notional come from trade prints only: ``last_size`` and ``last * last_size``.

A bar closes when the first tick of a later bar arrives — event time only, never a timer — so the last bar of a
stream stays open until the next tick comes, and an interval in which nothing priced arrived yields no bar at all
(indicators advance per bar that traded or quoted, not per wall-clock interval). A tick older than the open bar
belongs to a bar already closed and acted on; it is counted in ``late_ticks`` and otherwise ignored.

The open bar is kept in ``Decimal`` — adding and comparing decimals is several times cheaper than converting each
tick to float — with prices doubled (``bid + ask``, ``last + last``) so that no tick pays for a division; a closed
bar converts to floats once. Arithmetic runs in a private context wide enough to be exact for ``decimal(18, 8)``
inputs, so results never depend on the caller's decimal context.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Context, Decimal
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from schemas.events import TickIngested

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_US = timedelta(microseconds=1)
DAY_US = 86_400_000_000
# Before the first tick: every event time is at or after the end of this "bar", so the first tick opens one.
_NEVER = datetime.min.replace(tzinfo=UTC)
_ZERO = Decimal(0)
_EXACT = Context(prec=80)
_add = _EXACT.add
_multiply = _EXACT.multiply

Ints = npt.NDArray[np.int64]
Flags = npt.NDArray[np.bool_]


class Bar(NamedTuple):
    """A closed bar: OHLC of tick prices, and what trade prints in it added up to."""

    start_us: int  # µs since the epoch, a multiple of the interval
    open: float
    high: float
    low: float
    close: float
    volume: float  # Σ last_size of trade prints
    notional: float  # Σ last * last_size of trade prints


class TickColumns(NamedTuple):
    """One instrument's ticks in arrival order, as columns: what ``BarBuilder.add_columns`` folds at once.

    Decimals are integers scaled by ``10**scale`` (a ``decimal(18, 8)`` fits an int64): ``price2`` is the doubled
    price (``bid + ask`` when the tick has both, else ``last + last``), meaningful where ``priced``; ``last`` and
    ``size`` where ``traded`` (the tick has both ``last`` and ``last_size``).
    """

    ts_us: Ints  # exchange time, µs since the epoch
    price2: Ints
    priced: Flags
    last: Ints
    size: Ints
    traded: Flags
    scale: int


class BarBuilder:
    """Folds one instrument's ticks, in arrival order, into bars of ``interval_us`` by exchange time."""

    __slots__ = (
        "_close2",
        "_high2",
        "_low2",
        "_open2",
        "_step",
        "begin",
        "end",
        "interval_us",
        "late_ticks",
        "notional",
        "start_us",
        "volume",
    )

    def __init__(self, interval_us: int) -> None:
        self.interval_us = interval_us
        self._step = timedelta(microseconds=interval_us)
        self.start_us: int | None = None
        self.begin = _NEVER
        self.end = _NEVER
        self._open2: Decimal | None = None
        self._high2 = self._low2 = self._close2 = _ZERO
        self.volume = _ZERO
        self.notional = _ZERO
        self.late_ticks = 0

    def add(self, tick: TickIngested) -> Bar | None:
        """Fold ``tick`` into the open bar; returns the bar it closed, if it is the first tick of a later one."""
        ts = tick.exchange_ts
        closed = None
        if ts >= self.end:
            closed = self._roll(ts)
        elif ts < self.begin:
            self.late_ticks += 1
            return None
        bid = tick.bid
        ask = tick.ask
        last = tick.last
        if bid is not None and ask is not None:
            price2 = _add(bid, ask)
        elif last is not None:
            price2 = _add(last, last)
        else:
            return closed
        if self._open2 is None:
            self._open2 = self._high2 = self._low2 = price2
        elif price2 > self._high2:
            self._high2 = price2
        elif price2 < self._low2:
            self._low2 = price2
        self._close2 = price2
        if last is not None:
            size = tick.last_size
            if size is not None:
                self.volume = _add(self.volume, size)
                self.notional = _add(self.notional, _multiply(last, size))
        return closed

    def add_columns(self, ticks: TickColumns) -> list[tuple[int, Bar]]:
        """Fold every tick of ``ticks`` in, as ``add`` would one after another: the bars they closed, each with the
        position of the tick that closed it.

        Which bar each tick belongs to, which ticks are late, and each bar's open, high, low, close and sums are
        found by numpy over the whole batch; Python runs once per bar the batch touches, not once per tick. Within
        the batch a bar is integers (sums of sizes and notionals exact, as ``add``'s decimals are); only the bar left
        open is kept as decimals, as ``add`` keeps it.
        """
        if len(ticks.ts_us) == 0:
            return []
        interval = self.interval_us
        bar = np.floor_divide(ticks.ts_us, interval)
        # The open bar is always the bar of the latest tick so far; a tick of an earlier bar is late.
        current = np.maximum.accumulate(bar)
        if self.start_us is not None:
            current = np.maximum(current, self.start_us // interval)
        previous = np.empty_like(current)
        previous[1:] = current[:-1]
        # Before the batch: the open bar, or (the first tick ever) none, so that the first tick opens one.
        previous[0] = current[0] - 1 if self.start_us is None else self.start_us // interval
        self.late_ticks += int(np.count_nonzero(bar < current))
        rolls = np.flatnonzero(current > previous)  # ticks that open a later bar, closing the open one
        # Segments of the batch, each within one bar: before the first roll (the open bar going on), then each
        # roll to the next; a segment after a roll holds all its bar's ticks (a later tick of it would be late).
        going_on = len(rolls) == 0 or rolls[0] != 0
        starts = np.concatenate(([0], rolls)) if going_on else rolls
        counted = (bar == current) & ticks.priced
        prices = _segment_prices(ticks.price2, counted, starts)
        sums = _segment_sums(ticks, counted & ticks.traded, starts)
        scale = ticks.scale
        if going_on:
            self._merge(prices.get(0), sums.get(0), scale)
        closed: list[tuple[int, Bar]] = []
        opened: tuple[int, int] | None = None  # the last bar opened in this batch: its start and its segment
        for segment, row in enumerate(rolls.tolist(), start=int(going_on)):
            if opened is None:
                shut = self._bar()
            else:
                shut = _bar_of(opened[0], prices.get(opened[1]), sums.get(opened[1]), scale)
            if shut is not None:
                closed.append((row, shut))
            opened = (int(current[row]) * interval, segment)
        if opened is not None:
            begin = EPOCH + ONE_US * opened[0]
            self._open(opened[0], begin, begin + self._step)
            self._merge(prices.get(opened[1]), sums.get(opened[1]), scale)
        return closed

    def _merge(self, prices: tuple[int, int, int, int] | None, sums: tuple[int, int] | None, scale: int) -> None:
        """Take a run of the open bar's ticks into it, given as ``_segment_prices`` and ``_segment_sums`` found them:
        what ``add`` does tick by tick."""
        if prices is not None:
            first, high, low, close = (_decimal(price, scale) for price in prices)
            if self._open2 is None:
                self._open2, self._high2, self._low2 = first, high, low
            else:
                if high > self._high2:
                    self._high2 = high
                if low < self._low2:
                    self._low2 = low
            self._close2 = close
        if sums is not None:
            self.volume = _add(self.volume, _decimal(sums[0], scale))
            self.notional = _add(self.notional, _decimal(sums[1], 2 * scale))

    def _roll(self, ts: datetime) -> Bar | None:
        closed = self._bar()
        following = self.end + self._step
        if ts < following and self.start_us is not None:  # the very next bar: the common case, and cheaper
            self._open(self.start_us + self.interval_us, self.end, following)
        else:
            us = (ts - EPOCH) // ONE_US
            start_us = us - us % self.interval_us
            begin = EPOCH + ONE_US * start_us
            self._open(start_us, begin, begin + self._step)
        return closed

    def _open(self, start_us: int, begin: datetime, end: datetime) -> None:
        self.start_us = start_us
        self.begin = begin
        self.end = end
        self._open2 = None
        self._high2 = self._low2 = self._close2 = _ZERO
        self.volume = self.notional = _ZERO

    def _bar(self) -> Bar | None:
        open2 = self._open2
        if open2 is None or self.start_us is None:
            return None
        # Often several of OHLC are the same tick's price (one object): convert each object once.
        open_ = float(open2) * 0.5
        high2, low2, close2 = self._high2, self._low2, self._close2
        high = open_ if high2 is open2 else float(high2) * 0.5
        low = open_ if low2 is open2 else float(low2) * 0.5
        if close2 is open2:
            close = open_
        elif close2 is high2:
            close = high
        elif close2 is low2:
            close = low
        else:
            close = float(close2) * 0.5
        volume = self.volume
        traded = volume is not _ZERO  # still the initial zero: no trade print, nothing to convert
        return Bar(
            self.start_us,
            open_,
            high,
            low,
            close,
            float(volume) if traded else 0.0,
            float(self.notional) if traded else 0.0,
        )

    def state(self) -> list[Any]:
        """The open bar and counters, JSON-ready (decimals as exact strings)."""
        prices = [self._open2, self._high2, self._low2, self._close2] if self._open2 is not None else None
        return [
            self.start_us,
            None if prices is None else [str(p) for p in prices],
            str(self.volume),
            str(self.notional),
            self.late_ticks,
        ]

    def restore(self, state: list[Any]) -> None:
        """Take back what ``state`` returned."""
        start_us, prices, volume, notional, late_ticks = state
        if start_us is not None:
            begin = EPOCH + ONE_US * start_us
            self._open(start_us, begin, begin + self._step)
        if prices is not None:
            self._open2, self._high2, self._low2, self._close2 = (Decimal(p) for p in prices)
        self.volume = Decimal(volume)
        self.notional = Decimal(notional)
        self.late_ticks = late_ticks


def _decimal(scaled: int, scale: int) -> Decimal:
    """The decimal a ``scale``-scaled integer stands for, with ``scale`` as exponent (as the wire's decimals have)."""
    return Decimal(scaled).scaleb(-scale, _EXACT)


def _bar_of(
    start_us: int, prices: tuple[int, int, int, int] | None, sums: tuple[int, int] | None, scale: int
) -> Bar | None:
    """The bar of one segment's integers, as ``BarBuilder._bar`` makes it of its decimals (a scaled integer's true
    division is correctly rounded, as converting the decimal is)."""
    if prices is None:
        return None
    unit = 10**scale
    first, high, low, close = prices
    volume, notional = (0.0, 0.0) if sums is None else (sums[0] / unit, sums[1] / (unit * unit))
    return Bar(start_us, first / unit * 0.5, high / unit * 0.5, low / unit * 0.5, close / unit * 0.5, volume, notional)


def _grouped(rows: Ints, starts: Ints) -> tuple[Ints, Ints]:
    """For ``rows`` (ascending positions), the segment each falls in, and where in ``rows`` each segment's run of
    them begins."""
    segments = np.searchsorted(starts, rows, side="right") - 1
    return segments, np.flatnonzero(np.concatenate(([True], segments[1:] != segments[:-1])))


def _segment_prices(price2: Ints, counted: Flags, starts: Ints) -> dict[int, tuple[int, int, int, int]]:
    """Per segment holding counted ticks: the first, highest, lowest and last doubled price."""
    rows = np.flatnonzero(counted)
    if len(rows) == 0:
        return {}
    segments, firsts = _grouped(rows, starts)
    lasts = np.concatenate((firsts[1:], [len(rows)])) - 1
    prices = price2[rows]
    found = zip(
        prices[firsts].tolist(),
        np.maximum.reduceat(prices, firsts).tolist(),
        np.minimum.reduceat(prices, firsts).tolist(),
        prices[lasts].tolist(),
        strict=True,
    )
    return dict(zip(segments[firsts].tolist(), found, strict=True))


def _segment_sums(ticks: TickColumns, trades: Flags, starts: Ints) -> dict[int, tuple[int, int]]:
    """Per segment holding trade prints: Σ size and Σ last * size, as exact integers."""
    rows = np.flatnonzero(trades)
    if len(rows) == 0:
        return {}
    segments, firsts = _grouped(rows, starts)
    sizes = ticks.size[rows].astype(object)  # Python integers: a notional overflows 64 bits
    notionals = ticks.last[rows].astype(object) * sizes
    found = zip(np.add.reduceat(sizes, firsts).tolist(), np.add.reduceat(notionals, firsts).tolist(), strict=True)
    return dict(zip(segments[firsts].tolist(), found, strict=True))
