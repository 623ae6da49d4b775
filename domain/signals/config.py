"""How the signal engine builds bars and which indicators it runs, with which parameters."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from schemas.settings import TradecoreSettings

ONE_DAY = timedelta(days=1)


class SignalConfig(TradecoreSettings):
    """Bar interval and indicator parameters; ``TRADECORE_SIGNALS_``-prefixed in the environment."""

    model_config = SettingsConfigDict(env_prefix="TRADECORE_SIGNALS_")

    bar_interval: timedelta = Field(
        timedelta(seconds=1), description="Length of a bar; bars are aligned to the epoch and must tile a UTC day."
    )
    ema_fast: int = Field(12, ge=1, description="Period of the fast EMA of closes (alpha = 2 / (period + 1)).")
    ema_slow: int = Field(26, ge=2, description="Period of the slow EMA of closes; longer than the fast one.")
    rsi_period: int = Field(14, ge=1, description="Period of the RSI's Wilder averages of gains and losses.")
    rsi_oversold: float = Field(30.0, gt=0, lt=100, description="RSI crossing below this signals LONG (oversold).")
    rsi_overbought: float = Field(70.0, gt=0, lt=100, description="RSI crossing above this signals SHORT.")
    bollinger_period: int = Field(
        20, ge=2, description="Closes in the Bollinger window (their mean and population sigma)."
    )
    bollinger_width: float = Field(2.0, gt=0, description="Band half-width in population standard deviations.")
    atr_period: int = Field(14, ge=1, description="Period of the ATR's Wilder average of true ranges.")

    @model_validator(mode="after")
    def _consistent(self) -> SignalConfig:
        step = self.bar_interval
        if step <= timedelta(0) or ONE_DAY % step:
            # Bars that tile the day never straddle midnight, so a bar belongs to exactly one VWAP session.
            raise ValueError(f"bar_interval must be positive and divide one day exactly, not {step}")
        if self.ema_fast >= self.ema_slow:
            raise ValueError(f"ema_fast ({self.ema_fast}) must be shorter than ema_slow ({self.ema_slow})")
        if self.rsi_oversold >= self.rsi_overbought:
            raise ValueError(f"rsi_oversold ({self.rsi_oversold}) must be below rsi_overbought ({self.rsi_overbought})")
        return self

    @property
    def bar_interval_us(self) -> int:
        """The bar interval in whole microseconds (event times carry µs)."""
        return self.bar_interval // timedelta(microseconds=1)
