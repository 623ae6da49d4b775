"""Whole-series computations of what the engine computes bar by bar, written independently with polars and numpy.

Nothing here imports the engine's code except the crossing tolerance, a parameter: bars come from polars
``group_by_dynamic``, EMA and Wilder averages from polars ``ewm_mean(adjust=False)`` (its first input replaced by the
simple mean of the first ``period`` inputs, the TA-Lib/TradingView seed), Bollinger moments from numpy over every
window at once, VWAP from cumulative sums per UTC day, crossings from forward-filled signs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from domain.signals.indicators import CROSS_TOLERANCE

DAY_US = 86_400_000_000
Array = np.ndarray


def bars(frame: pl.DataFrame, interval_us: int) -> pl.DataFrame:
    """OHLC of tick prices (mid if bid and ask, else last) and trade volume/notional, per epoch-aligned interval."""
    trade = pl.col("last").is_not_null() & pl.col("last_size").is_not_null()
    priced = frame.with_columns(
        price=pl.when(pl.col("bid").is_not_null() & pl.col("ask").is_not_null())
        .then((pl.col("bid") + pl.col("ask")) / 2)
        .otherwise(pl.col("last")),
        volume=pl.when(trade).then(pl.col("last_size")).otherwise(0.0),
        notional=pl.when(trade).then(pl.col("last") * pl.col("last_size")).otherwise(0.0),
    ).filter(pl.col("price").is_not_null())
    return (
        priced.group_by_dynamic("ts", every=f"{interval_us}us")
        .agg(
            open=pl.col("price").first(),
            high=pl.col("price").max(),
            low=pl.col("price").min(),
            close=pl.col("price").last(),
            volume=pl.col("volume").sum(),
            notional=pl.col("notional").sum(),
        )
        .with_columns(start_us=pl.col("ts").dt.epoch("us"))
    )


def seeded_ewm(x: Array, period: int, alpha: float) -> Array:
    """y[period-1] = mean(x[:period]); then y[t] = (1 - alpha) y[t-1] + alpha x[t]; NaN before."""
    out = np.full(len(x), np.nan)
    if len(x) >= period:
        seed = pl.Series(x).rolling_mean(period)[period - 1]
        tail = pl.Series(np.concatenate([[seed], x[period:]])).ewm_mean(alpha=alpha, adjust=False)
        out[period - 1 :] = tail.to_numpy()
    return out


def ema(close: Array, period: int) -> Array:
    return seeded_ewm(close, period, 2.0 / (period + 1))


def rsi(close: Array, period: int) -> Array:
    change = np.diff(close)
    gain = seeded_ewm(np.clip(change, 0.0, None), period, 1.0 / period)
    loss = seeded_ewm(np.clip(-change, 0.0, None), period, 1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = 100.0 - 100.0 / (1.0 + gain / loss)  # loss 0 -> gain/loss inf -> 100
    value[(gain == 0.0) & (loss == 0.0)] = 50.0
    return np.concatenate([[np.nan], value])


def bollinger(close: Array, period: int, width: float) -> tuple[Array, Array, Array]:
    """(lower, middle, upper) with the population standard deviation (ddof=0)."""
    middle = np.full(len(close), np.nan)
    sigma = np.full(len(close), np.nan)
    if len(close) >= period:
        windows = np.lib.stride_tricks.sliding_window_view(close, period)
        middle[period - 1 :] = windows.mean(axis=1)
        sigma[period - 1 :] = windows.std(axis=1, ddof=0)
    return middle - width * sigma, middle, middle + width * sigma


def atr(high: Array, low: Array, close: Array, period: int) -> Array:
    previous = close[:-1]
    true_range = np.maximum.reduce([high[1:] - low[1:], np.abs(high[1:] - previous), np.abs(low[1:] - previous)])
    return np.concatenate([[np.nan], seeded_ewm(true_range, period, 1.0 / period)])


def vwap(bars: pl.DataFrame) -> Array:
    day = pl.col("start_us") // DAY_US
    value = bars.select(
        v=pl.when(pl.col("volume").cum_sum().over(day) > 0).then(
            pl.col("notional").cum_sum().over(day) / pl.col("volume").cum_sum().over(day)
        )
    )
    return value["v"].fill_null(np.nan).to_numpy()


def crossings(value: Array, level: Array | float, session: Array | None = None) -> Array:
    """Per bar: +1 where ``value`` crossed above ``level``, -1 below, else 0 (sides restart with each session)."""
    level = np.broadcast_to(np.asarray(level, dtype=float), value.shape)
    band = CROSS_TOLERANCE * np.abs(level)
    with np.errstate(invalid="ignore"):
        side = np.where(value > level + band, 1, np.where(value < level - band, -1, 0))
    frame = pl.DataFrame({"side": side, "session": np.zeros(len(value)) if session is None else session})
    seen = pl.when(pl.col("side") != 0).then(pl.col("side")).forward_fill().over("session")
    before = frame.select(seen.shift(1).over("session").alias("before"))["before"].fill_null(0).to_numpy()
    return np.where((side != 0) & (before != 0) & (before != side), side, 0)


@dataclass(frozen=True)
class Expected:
    """Every indicator, bar by bar, and the signals they make, in the engine's order."""

    bars: pl.DataFrame
    values: dict[str, Array]
    signals: list[tuple[int, str, str, float]]  # bar start µs, indicator, direction, strength


def expected(
    frame: pl.DataFrame,
    *,
    interval_us: int,
    ema_fast: int = 12,
    ema_slow: int = 26,
    rsi_period: int = 14,
    oversold: float = 30.0,
    overbought: float = 70.0,
    bollinger_period: int = 20,
    bollinger_width: float = 2.0,
    atr_period: int = 14,
) -> Expected:
    table = bars(frame, interval_us)
    close = table["close"].to_numpy()
    high = table["high"].to_numpy()
    low = table["low"].to_numpy()
    start = table["start_us"].to_numpy()
    lower, middle, upper = bollinger(close, bollinger_period, bollinger_width)
    values = {
        "close": close,
        "ema_fast": ema(close, ema_fast),
        "ema_slow": ema(close, ema_slow),
        "rsi": rsi(close, rsi_period),
        "bb_upper": upper,
        "bb_middle": middle,
        "bb_lower": lower,
        "atr": atr(high, low, close, atr_period),
        "vwap": vwap(table),
    }
    ranges = values["atr"]
    warm = ~np.isnan(ranges)  # signals scaled by the ATR wait for it
    fast, slow, level, rsi_value = values["ema_fast"], values["ema_slow"], values["vwap"], values["rsi"]
    ema_x = crossings(fast, slow)
    vwap_x = crossings(close, level, session=start // DAY_US)
    bands = f"bollinger({bollinger_period},{bollinger_width:g})"
    with np.errstate(divide="ignore", invalid="ignore"):

        def in_atrs(distance: Array) -> Array:
            return np.where(distance >= ranges, 1.0, distance / ranges)

        # (indicator, fired per bar, direction, strength per bar); RSI and bands read as mean reversion.
        rules: list[tuple[str, Array, Array | str, Array]] = [
            (
                f"ema_cross({ema_fast},{ema_slow})",
                (ema_x != 0) & warm,
                np.where(ema_x > 0, "LONG", "SHORT"),
                in_atrs(np.abs(fast - slow)),
            ),
            (f"rsi({rsi_period})", crossings(rsi_value, oversold) < 0, "LONG", (oversold - rsi_value) / oversold),
            (
                f"rsi({rsi_period})",
                crossings(rsi_value, overbought) > 0,
                "SHORT",
                (rsi_value - overbought) / (100.0 - overbought),
            ),
            (bands, (crossings(close, upper) > 0) & warm, "SHORT", in_atrs(close - upper)),
            (bands, (crossings(close, lower) < 0) & warm, "LONG", in_atrs(lower - close)),
            ("vwap", (vwap_x != 0) & warm, np.where(vwap_x > 0, "LONG", "SHORT"), in_atrs(np.abs(close - level))),
        ]
    signals = []
    for i in range(len(close)):
        for name, fired, direction, score in rules:
            if fired[i]:
                side = direction if isinstance(direction, str) else str(direction[i])
                signals.append((int(start[i]), name, side, float(score[i])))
    return Expected(table, values, signals)
