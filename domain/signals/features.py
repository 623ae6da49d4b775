"""Model features of closed bars, from the signal engine's own incremental indicators, and the model behind them.

``FeatureSet`` turns each closed bar into one row of ``FEATURES`` with the very indicator classes the crossings use
(``domain.signals.indicators``), so a model is trained on exactly the numbers it is later scored on — by
`tradecore train` over a recorded file and by the signals processor over the live stream. Every feature is free of
the price's scale (a ratio or a bounded oscillator), so a model carries over between price levels:

=====================  ==========================================================================================
feature                definition
=====================  ==========================================================================================
ema_gap                (fast EMA - slow EMA) / close
rsi                    RSI / 100 - 0.5 (centred: -0.5 all losses, +0.5 all gains)
bollinger_position     (close - middle band) / (width · sigma): -1 on the lower band, +1 on the upper; 0 if sigma = 0
atr_ratio              ATR / close
vwap_distance          (close - session VWAP) / close; 0 while nothing traded in the session (quote-only data)
return_1/_3/_10        close / close n bars before - 1
=====================  ==========================================================================================

A row exists once every indicator is warmed up; before, ``update`` returns None. The model itself is outside
``domain`` (it is loaded from a file); the engine sees it through ``Scorer``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from domain.signals.bars import DAY_US, Bar
from domain.signals.config import SignalConfig
from domain.signals.indicators import (
    AverageTrueRange,
    BollingerBands,
    PastCloses,
    RelativeStrengthIndex,
    SessionVwap,
    SmoothedAverage,
)

RETURN_WINDOWS = (1, 3, 10)
FEATURES: tuple[str, ...] = (
    "ema_gap",
    "rsi",
    "bollinger_position",
    "atr_ratio",
    "vwap_distance",
    *(f"return_{n}" for n in RETURN_WINDOWS),
)
Row = tuple[float, ...]


class Scorer(Protocol):
    """A fitted model the engine scores closed bars with (loaded outside ``domain``)."""

    @property
    def model_id(self) -> str:
        """What names the model in its signals: the sha256 of its file."""
        ...

    @property
    def features(self) -> SignalConfig:
        """The bar interval and indicator periods its features were computed with in training."""
        ...

    def score(self, rows: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """P(the next bar closes higher) for each row of ``FEATURES``; a row's score never depends on the others."""
        ...


class FeatureSet:
    """One instrument's indicators for model features, updated once per closed bar."""

    __slots__ = ("atr", "bands", "closes", "ema_fast", "ema_slow", "rsi", "vwap", "width")

    def __init__(self, config: SignalConfig) -> None:
        self.ema_fast = SmoothedAverage.ema(config.ema_fast)
        self.ema_slow = SmoothedAverage.ema(config.ema_slow)
        self.rsi = RelativeStrengthIndex(config.rsi_period)
        self.bands = BollingerBands(config.bollinger_period, config.bollinger_width)
        self.width = config.bollinger_width
        self.atr = AverageTrueRange(config.atr_period)
        self.vwap = SessionVwap()
        self.closes = PastCloses(max(RETURN_WINDOWS))

    def update(self, bar: Bar) -> Row | None:
        """Take in a closed bar; its row of ``FEATURES``, or None while an indicator is still warming up."""
        close = bar.close
        atr = self.atr.update(bar.high, bar.low, close)
        fast = self.ema_fast.update(close)
        slow = self.ema_slow.update(close)
        rsi = self.rsi.update(close)
        bands = self.bands
        bands.update(close)
        vwap = self.vwap.update(bar.start_us // DAY_US, bar.notional, bar.volume)
        closes = self.closes
        closes.update(close)
        returns = [closes.change(n) for n in RETURN_WINDOWS]
        if slow != slow or rsi != rsi or atr != atr or bands.middle != bands.middle or returns[-1] != returns[-1]:
            return None
        spread = self.width * bands.sigma
        return (
            (fast - slow) / close,
            rsi / 100.0 - 0.5,
            (close - bands.middle) / spread if spread > 0.0 else 0.0,
            atr / close,
            (close - vwap) / close if vwap == vwap else 0.0,
            *returns,
        )

    def state(self) -> dict[str, Any]:
        return {
            "ema_fast": self.ema_fast.state(),
            "ema_slow": self.ema_slow.state(),
            "rsi": self.rsi.state(),
            "bands": self.bands.state(),
            "atr": self.atr.state(),
            "vwap": self.vwap.state(),
            "closes": self.closes.state(),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.ema_fast.restore(state["ema_fast"])
        self.ema_slow.restore(state["ema_slow"])
        self.rsi.restore(state["rsi"])
        self.bands.restore(state["bands"])
        self.atr.restore(state["atr"])
        self.vwap.restore(state["vwap"])
        self.closes.restore(state["closes"])


def feature_rows(bars: list[Bar], config: SignalConfig) -> tuple[list[Bar], npt.NDArray[np.float64]]:
    """The bars that have a feature row, and their rows (one per bar, in order), as the engine computes them."""
    features = FeatureSet(config)
    kept: list[Bar] = []
    rows: list[Row] = []
    for bar in bars:
        row = features.update(bar)
        if row is not None:
            kept.append(bar)
            rows.append(row)
    return kept, np.array(rows, dtype=np.float64).reshape(len(rows), len(FEATURES))
