"""Technical indicators over closed bars, each updated in O(1) per bar.

Conventions are TA-Lib's, so values can be checked against it:

* Exponential averages are seeded with the simple mean of their first ``period`` inputs and then follow
  ``y += alpha (x - y)``: alpha = 2 / (period + 1) for an EMA, alpha = 1 / period for Wilder's smoothing (RSI,
  ATR). The seed is the first output, so "warmed up" means a real ``period``-input average exists; before it,
  the value is NaN.
* RSI(n) = 100 · avg_gain / (avg_gain + avg_loss) over close-to-close changes, so it needs n + 1 closes. One
  departure: a market with no change at all reads 50, neutral (TA-Lib says 0; 0/0 is neither oversold nor overbought).
* Bollinger bands: mean ± width · sigma of the last ``period`` closes, sigma the *population* standard deviation
  (divide by n, not n - 1).
* ATR(n): Wilder average of true ranges max(high, prev close) - min(low, prev close); the first bar has no previous
  close, so ATR needs n + 1 bars.
* VWAP: Σ notional / Σ volume of trade prints since the start of the bar's UTC day; NaN while nothing traded.

Floats, not decimals: indicators are scores, not money. Scalars are Python floats — numpy scalar arithmetic costs
several times more per operation — and numpy holds what is vectorised: the Bollinger ring buffer and its periodic
exact recomputation.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

NAN = math.nan
# Within this fraction of |level| a value counts as touching the level, not as being on either side of it: float
# noise in a flat market (a band collapsed onto the mean, two averages of the same constant) never makes a crossing.
CROSS_TOLERANCE = 1e-9


class SmoothedAverage:
    """Exponential smoothing with factor ``alpha``, seeded with the mean of the first ``period`` inputs."""

    __slots__ = ("_seed_sum", "alpha", "count", "period", "value")

    def __init__(self, period: int, alpha: float) -> None:
        self.period = period
        self.alpha = alpha
        self.count = 0
        self._seed_sum = 0.0
        self.value = NAN

    @classmethod
    def ema(cls, period: int) -> SmoothedAverage:
        """The exponential moving average of ``period``: alpha = 2 / (period + 1)."""
        return cls(period, 2.0 / (period + 1))

    @classmethod
    def wilder(cls, period: int) -> SmoothedAverage:
        """Wilder's smoothing of ``period`` (his RSI and ATR): alpha = 1 / period."""
        return cls(period, 1.0 / period)

    def update(self, x: float) -> float:
        """Take in ``x``; the average, NaN until ``period`` inputs have been seen."""
        if self.count >= self.period:
            self.value += self.alpha * (x - self.value)
        else:
            self.count += 1
            self._seed_sum += x
            if self.count == self.period:
                self.value = self._seed_sum / self.period
        return self.value

    def state(self) -> list[Any]:
        return [self.count, self._seed_sum, self.value]

    def restore(self, state: list[Any]) -> None:
        self.count, self._seed_sum, self.value = state


class RelativeStrengthIndex:
    """Wilder's RSI of closes, 0 to 100."""

    __slots__ = ("_gains", "_losses", "_previous", "value")

    def __init__(self, period: int) -> None:
        self._gains = SmoothedAverage.wilder(period)
        self._losses = SmoothedAverage.wilder(period)
        self._previous = NAN
        self.value = NAN

    def update(self, close: float) -> float:
        """Take in a bar's close; the RSI, NaN until ``period`` changes have been seen."""
        previous = self._previous
        self._previous = close
        if previous != previous:  # NaN: the first close has no change
            return NAN
        change = close - previous
        gain = self._gains.update(change if change > 0.0 else 0.0)
        loss = self._losses.update(-change if change < 0.0 else 0.0)
        if gain != gain:
            return NAN
        total = gain + loss
        self.value = 100.0 * gain / total if total > 0.0 else 50.0
        return self.value

    def state(self) -> list[Any]:
        return [self._gains.state(), self._losses.state(), self._previous, self.value]

    def restore(self, state: list[Any]) -> None:
        gains, losses, self._previous, self.value = state
        self._gains.restore(gains)
        self._losses.restore(losses)


class RollingMoments:
    """Mean and population variance of the last ``period`` inputs, in a numpy ring buffer.

    The window's sums are kept about a shift ``k`` near its values — Σ(x - k) and Σ(x - k)², updated in O(1) as an
    input enters and the oldest leaves — because sums of raw prices would cancel catastrophically (a sigma of 5e-6 on
    a price of 1.12 is lost in the 16 digits of Σx²); x - k is exact for x within a factor 2 of k. Every ``period``
    updates ``k`` moves to the window's mean and the sums are recomputed from the buffer (O(period), so O(1)
    amortised), which keeps the shift close and float error from building up over a long stream.
    """

    __slots__ = ("_next", "_shift", "_sum", "_sum_sq", "_window", "count", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._window = np.zeros(period, dtype=np.float64)
        self._next = 0
        self.count = 0
        self._shift = 0.0
        self._sum = 0.0
        self._sum_sq = 0.0

    @property
    def mean(self) -> float:
        """Mean of the inputs in the window."""
        return self._shift + self._sum / self.count if self.count else NAN

    @property
    def variance(self) -> float:
        """Population variance (divide by n) of the inputs in the window."""
        if not self.count:
            return NAN
        offset = self._sum / self.count
        variance = self._sum_sq / self.count - offset * offset
        return variance if variance > 0.0 else 0.0

    def update(self, x: float) -> None:
        """Take in ``x``, dropping the oldest input once the window is full."""
        slot = self._next
        if self.count == 0:
            self._shift = x
        d = x - self._shift
        if self.count < self.period:
            self.count += 1
            self._sum += d
            self._sum_sq += d * d
        else:
            old = float(self._window[slot]) - self._shift
            self._sum += d - old
            self._sum_sq += (d - old) * (d + old)
        self._window[slot] = x
        slot += 1
        if slot == self.period:
            slot = 0
            if self.count == self.period:
                self._resync()
        self._next = slot

    def _resync(self) -> None:
        shift = float(self._window.mean())
        deviations = self._window - shift
        self._shift = shift
        self._sum = float(deviations.sum())
        self._sum_sq = float(deviations @ deviations)

    def state(self) -> list[Any]:
        return [self._window.tolist(), self._next, self.count, self._shift, self._sum, self._sum_sq]

    def restore(self, state: list[Any]) -> None:
        window, self._next, self.count, self._shift, self._sum, self._sum_sq = state
        self._window = np.array(window, dtype=np.float64)


class BollingerBands:
    """Mean ± ``width`` population standard deviations of the last ``period`` closes."""

    __slots__ = ("_moments", "lower", "middle", "sigma", "upper", "width")

    def __init__(self, period: int, width: float) -> None:
        self._moments = RollingMoments(period)
        self.width = width
        self.middle = self.upper = self.lower = self.sigma = NAN

    def update(self, close: float) -> None:
        """Take in a bar's close; the bands stay NaN until the window is full."""
        moments = self._moments
        moments.update(close)
        if moments.count == moments.period:
            self.sigma = math.sqrt(moments.variance)
            half = self.width * self.sigma
            self.middle = middle = moments.mean
            self.upper = middle + half
            self.lower = middle - half

    def state(self) -> list[Any]:
        return [self._moments.state(), self.middle, self.upper, self.lower, self.sigma]

    def restore(self, state: list[Any]) -> None:
        moments, self.middle, self.upper, self.lower, self.sigma = state
        self._moments.restore(moments)


class AverageTrueRange:
    """Wilder's average true range."""

    __slots__ = ("_average", "_previous")

    def __init__(self, period: int) -> None:
        self._average = SmoothedAverage.wilder(period)
        self._previous = NAN

    @property
    def value(self) -> float:
        return self._average.value

    def update(self, high: float, low: float, close: float) -> float:
        """Take in a bar; the ATR, NaN until ``period`` true ranges have been seen."""
        previous = self._previous
        self._previous = close
        if previous != previous:
            return NAN
        true_range = (high if high > previous else previous) - (low if low < previous else previous)
        return self._average.update(true_range)

    def state(self) -> list[Any]:
        return [self._average.state(), self._previous]

    def restore(self, state: list[Any]) -> None:
        average, self._previous = state
        self._average.restore(average)


class SessionVwap:
    """Volume-weighted average trade price since the start of the current UTC day."""

    __slots__ = ("day", "notional", "value", "volume")

    def __init__(self) -> None:
        self.day: int | None = None
        self.notional = 0.0
        self.volume = 0.0
        self.value = NAN

    def update(self, day: int, notional: float, volume: float) -> float:
        """Take in a bar of UTC day number ``day``; a new day starts a new session. NaN until something traded."""
        if day != self.day:
            self.day = day
            self.notional = self.volume = 0.0
        self.notional += notional
        self.volume += volume
        self.value = self.notional / self.volume if self.volume > 0.0 else NAN
        return self.value

    def state(self) -> list[Any]:
        return [self.day, self.notional, self.volume, self.value]

    def restore(self, state: list[Any]) -> None:
        self.day, self.notional, self.volume, self.value = state


class Crossing:
    """Which side of a level a series was last seen on, and when it changes sides.

    The first time the series is seen clear of the level sets the side without a crossing, so a crossing always
    compares two warmed-up values. Touching the level (within ``CROSS_TOLERANCE``) keeps the side it was on.
    """

    __slots__ = ("side",)

    def __init__(self) -> None:
        self.side = 0  # 0: not yet seen clear of the level

    def update(self, value: float, level: float) -> int:
        """+1 if ``value`` has just crossed above ``level``, -1 if just below, else 0."""
        band = CROSS_TOLERANCE * abs(level)
        if value > level + band:
            side = 1
        elif value < level - band:
            side = -1
        else:
            return 0
        previous = self.side
        self.side = side
        return side if previous and previous != side else 0

    def reset(self) -> None:
        """Forget the side (a new session: the level restarted)."""
        self.side = 0


class PastCloses:
    """The last ``depth`` + 1 closes, for the return over any window up to ``depth`` bars."""

    __slots__ = ("_closes", "depth")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._closes: list[float] = []

    def update(self, close: float) -> None:
        """Take in a bar's close, dropping the oldest beyond ``depth`` + 1."""
        closes = self._closes
        closes.append(close)
        if len(closes) > self.depth + 1:
            del closes[0]

    def change(self, bars: int) -> float:
        """The relative change of the close over the last ``bars`` bars; NaN until ``bars`` + 1 closes were seen."""
        closes = self._closes
        if len(closes) <= bars:
            return NAN
        return closes[-1] / closes[-1 - bars] - 1.0

    def state(self) -> list[Any]:
        return list(self._closes)

    def restore(self, state: list[Any]) -> None:
        self._closes = [float(c) for c in state]
