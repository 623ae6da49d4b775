"""The signal engine: ticks in, ``SignalGenerated`` out, one instrument's state at a time; pure and snapshot-able.

Per instrument, ticks fold into event-time bars (``domain.signals.bars``); each closed bar updates the indicators
(``domain.signals.indicators``) and is checked for crossings, and each crossing becomes one ``SignalGenerated``,
stamped by ``domain.derive`` from the tick that closed the bar, numbered on the ``signals`` stream of the
instrument. Most ticks only update the open bar; indicator work happens once per bar.

Signals, in this order when several fire on the same bar:

==============  ============================================  ==========  =======================================
indicator       crossing                                      direction   strength
==============  ============================================  ==========  =======================================
ema_cross(f,s)  fast EMA crosses above / below the slow EMA   LONG/SHORT  |fast - slow| / ATR
rsi(n)          RSI crosses below ``rsi_oversold``            LONG        (oversold - rsi) / oversold
rsi(n)          RSI crosses above ``rsi_overbought``          SHORT       (rsi - overbought) / (100 - overbought)
bollinger(n,k)  close crosses above the upper band            SHORT       (close - upper) / ATR
bollinger(n,k)  close crosses below the lower band            LONG        (lower - close) / ATR
vwap            close crosses above / below the session VWAP  LONG/SHORT  |close - vwap| / ATR
==============  ============================================  ==========  =======================================

RSI and Bollinger read as mean reversion (stretched → expect a return); EMA and VWAP as trend. Strengths are
capped at 1: a crossing by a whole ATR or more is full strength; with an ATR of exactly 0 any crossing is. An
indicator is not signalled before it is warmed up, nor — where its strength is scaled by the ATR — before the ATR
is; a crossing that happens meanwhile is not signalled later. The VWAP crossing restarts with each UTC-day session.
``values`` holds every indicator value that is warmed up at that bar (never NaN): close, ema_fast, ema_slow, rsi,
bb_upper, bb_middle, bb_lower, atr, vwap.

With a model (``Scorer``, ``domain.signals.features``), every closed bar whose features are warmed up is also scored:
one ``model(<sha256 of the model file>)`` signal per bar, after the crossings, LONG when the model gives the next
bar's close better than even odds of being higher, SHORT when worse, FLAT at exactly even; strength |2 score - 1|;
``values`` holds the close, the features and ``score``. The model's id and score ride in the existing fields — the
indicator's name carries its parameters, as ``ema_cross(12,26)`` does — so SignalGenerated needs no new version.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import ValidationError

from domain.derive import Sequences, derived_envelope
from domain.signals.bars import DAY_US, Bar, BarBuilder, TickColumns
from domain.signals.config import SignalConfig
from domain.signals.errors import SnapshotError
from domain.signals.features import FEATURES, FeatureSet, Scorer
from domain.signals.indicators import (
    AverageTrueRange,
    BollingerBands,
    Crossing,
    RelativeStrengthIndex,
    SessionVwap,
    SmoothedAverage,
)
from schemas.events import Direction, SignalGenerated, TickIngested

SNAPSHOT_FORMAT = "tradecore.signals.engine"
SNAPSHOT_VERSION = 1

Detection = tuple[str, Direction, float]  # indicator, direction, strength
Emitted = tuple[Detection, dict[str, float]]  # a detection and the values its signal carries
LONG = Direction.LONG
SHORT = Direction.SHORT


class SignalEngine:
    """Ticks in, signals out: per-instrument bars, indicators and crossings, with the state to snapshot."""

    def __init__(self, config: SignalConfig, model: Scorer | None = None) -> None:
        self.config = config
        self.model = model
        self.sequences = Sequences()
        self._instruments: dict[str, _Instrument] = {}

    def handle(self, tick: TickIngested) -> list[SignalGenerated]:
        """Fold ``tick`` in; the signals of the bar it closed, if it is the first tick of a later bar."""
        state = self._instruments.get(tick.instrument)
        if state is None:
            state = self._instruments[tick.instrument] = _Instrument(self.config, self.model)
        bar = state.bars.add(tick)
        return [] if bar is None else self._signals(self._detections(state, bar), tick)

    def handle_columns(
        self, instrument: str, ticks: TickColumns, triggers: Callable[[list[int]], Sequence[TickIngested]]
    ) -> list[tuple[int, list[SignalGenerated] | Exception]]:
        """Fold a batch of ``instrument``'s ticks in, as ``handle`` would one after another: per tick that closed a
        bar with signals, its position in ``ticks`` and the signals — or the exception their computation raised
        (``handle`` would have raised it for that tick). ``triggers`` gives the ticks at some positions as events:
        it is asked once, for the ticks whose bars signal, which the signals derive from."""
        state = self._instruments.get(instrument)
        if state is None:
            state = self._instruments[instrument] = _Instrument(self.config, self.model)
        found: list[tuple[int, list[Emitted] | Exception]] = []
        for position, bar in state.bars.add_columns(ticks):
            try:
                emitted = self._detections(state, bar)
            except Exception as err:  # the host dead-letters the tick, as it would have from ``handle``
                found.append((position, err))
                continue
            if emitted:
                found.append((position, emitted))
        if not found:
            return []
        signalling = [position for position, emitted in found if not isinstance(emitted, Exception)]
        events = dict(zip(signalling, triggers(signalling), strict=True))
        return [
            (position, emitted if isinstance(emitted, Exception) else self._signals(emitted, events[position]))
            for position, emitted in found
        ]

    def _detections(self, state: _Instrument, bar: Bar) -> list[Emitted]:
        """What ``bar`` signals: each detection with the values it carries."""
        found = state.on_bar(bar)
        scored = self._score(state, bar)
        if not found and scored is None:
            return []
        values = state.values(bar.close) if found else {}
        emitted = [(detection, values) for detection in found]
        if scored is not None:
            emitted.append(scored)
        return emitted

    def _signals(self, emitted: list[Emitted], tick: TickIngested) -> list[SignalGenerated]:
        """The signals of ``emitted``, derived from ``tick``, which closed their bar."""
        instrument = tick.instrument
        return [
            SignalGenerated(
                envelope=derived_envelope(SignalGenerated, tick, instrument, self.sequences.next(instrument)),
                instrument=instrument,
                indicator=indicator,
                direction=direction,
                strength=strength,
                values=dict(signal_values),
            )
            for (indicator, direction, strength), signal_values in emitted
        ]

    def _score(self, state: _Instrument, bar: Bar) -> tuple[Detection, dict[str, float]] | None:
        """The model's signal for ``bar``, once its features are warmed up (None without a model)."""
        model = self.model
        if model is None or state.features is None:
            return None
        row = state.features.update(bar)
        if row is None:
            return None
        score = float(model.score(np.array([row], dtype=np.float64))[0])
        direction = LONG if score > 0.5 else SHORT if score < 0.5 else Direction.FLAT
        values = {"close": bar.close, **dict(zip(FEATURES, row, strict=True)), "score": score}
        return (f"model({model.model_id})", direction, abs(2.0 * score - 1.0)), values

    def reset(self) -> None:
        """Forget all state, sequences included (to rebuild it by replaying the ticks)."""
        self.sequences = Sequences()
        self._instruments.clear()

    def late_ticks(self, instrument: str) -> int:
        """How many of ``instrument``'s ticks arrived after their bar had closed (and were ignored)."""
        state = self._instruments.get(instrument)
        return 0 if state is None else state.bars.late_ticks

    def to_snapshot(self) -> bytes:
        """The whole state as bytes: the same state always gives the same bytes."""
        document = {
            "format": SNAPSHOT_FORMAT,
            "version": SNAPSHOT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "sequences": self.sequences.last,
            "instruments": {name: state.state() for name, state in self._instruments.items()},
        }
        if self.model is not None:  # only then: a snapshot without a model keeps the bytes it always had
            document["model"] = self.model.model_id
        # repr of a float round-trips exactly; sorted keys make the bytes independent of arrival order.
        return json.dumps(document, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()

    @classmethod
    def from_snapshot(cls, data: bytes, model: Scorer | None = None) -> SignalEngine:
        """The engine ``to_snapshot`` saved, with the config it ran with; raises ``SnapshotError`` if unreadable or
        saved with another model than ``model`` (its features would continue another model's)."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise SnapshotError(f"not a signal-engine snapshot: {error}") from None
        if not isinstance(document, dict) or document.get("format") != SNAPSHOT_FORMAT:
            raise SnapshotError("not a signal-engine snapshot", hint=f"expected format {SNAPSHOT_FORMAT!r}")
        if document.get("version") != SNAPSHOT_VERSION:
            raise SnapshotError(
                f"signal-engine snapshot version {document.get('version')!r} is not readable here",
                hint=f"this version reads version {SNAPSHOT_VERSION}; rebuild the state by replaying the ticks",
            )
        saved_model = document.get("model")
        if saved_model != (None if model is None else model.model_id):
            raise SnapshotError(
                f"the snapshot was taken with model {saved_model}, not {None if model is None else model.model_id}",
                hint="rebuild the state by replaying the ticks with the model now configured",
            )
        try:
            engine = cls(SignalConfig(**document["config"]), model)
            engine.sequences.last = {str(name): int(last) for name, last in document["sequences"].items()}
            for name, state in document["instruments"].items():
                instrument = engine._instruments[name] = _Instrument(engine.config, model)
                instrument.restore(state)
        except (KeyError, TypeError, ValueError, ValidationError, AttributeError) as error:
            raise SnapshotError(f"damaged signal-engine snapshot: {error!r}") from None
        return engine


class _Instrument:
    """One instrument's open bar, indicators and crossing states."""

    __slots__ = (
        "atr",
        "bands",
        "bars",
        "crossings",
        "ema_fast",
        "ema_slow",
        "features",
        "names",
        "overbought",
        "oversold",
        "rsi",
        "vwap",
    )

    def __init__(self, config: SignalConfig, model: Scorer | None = None) -> None:
        self.names = _names(config)
        self.oversold = config.rsi_oversold
        self.overbought = config.rsi_overbought
        self.bars = BarBuilder(config.bar_interval_us)
        self.ema_fast = SmoothedAverage.ema(config.ema_fast)
        self.ema_slow = SmoothedAverage.ema(config.ema_slow)
        self.rsi = RelativeStrengthIndex(config.rsi_period)
        self.bands = BollingerBands(config.bollinger_period, config.bollinger_width)
        self.atr = AverageTrueRange(config.atr_period)
        self.vwap = SessionVwap()
        # ema, rsi below oversold, rsi above overbought, upper band, lower band, vwap
        self.crossings = tuple(Crossing() for _ in range(6))
        # The model's features use the indicator periods it was trained with, which need not be the crossings'.
        self.features = None if model is None else FeatureSet(model.features)

    def on_bar(self, bar: Bar) -> list[Detection]:
        """Update every indicator with a closed bar; the crossings it made."""
        close = bar.close
        atr = self.atr.update(bar.high, bar.low, close)
        fast = self.ema_fast.update(close)
        slow = self.ema_slow.update(close)
        rsi = self.rsi.update(close)
        bands = self.bands
        bands.update(close)
        ema_cross, rsi_low, rsi_high, upper, lower, vwap_cross = self.crossings
        day = bar.start_us // DAY_US
        if day != self.vwap.day:
            vwap_cross.reset()
        vwap = self.vwap.update(day, bar.notional, bar.volume)

        ema_name, rsi_name, bands_name, vwap_name = self.names
        scaled = atr == atr  # the ATR is warmed up
        found: list[Detection] = []
        if slow == slow:
            side = ema_cross.update(fast, slow)
            if side and scaled:
                found.append((ema_name, LONG if side > 0 else SHORT, _in_atrs(abs(fast - slow), atr)))
        if rsi == rsi:
            if rsi_low.update(rsi, self.oversold) < 0:
                found.append((rsi_name, LONG, (self.oversold - rsi) / self.oversold))
            if rsi_high.update(rsi, self.overbought) > 0:
                found.append((rsi_name, SHORT, (rsi - self.overbought) / (100.0 - self.overbought)))
        if bands.middle == bands.middle:
            if upper.update(close, bands.upper) > 0 and scaled:
                found.append((bands_name, SHORT, _in_atrs(close - bands.upper, atr)))
            if lower.update(close, bands.lower) < 0 and scaled:
                found.append((bands_name, LONG, _in_atrs(bands.lower - close, atr)))
        if vwap == vwap:
            side = vwap_cross.update(close, vwap)
            if side and scaled:
                found.append((vwap_name, LONG if side > 0 else SHORT, _in_atrs(abs(close - vwap), atr)))
        return found

    def values(self, close: float) -> dict[str, float]:
        """Every indicator value that is warmed up, by name."""
        bands = self.bands
        candidates = (
            ("close", close),
            ("ema_fast", self.ema_fast.value),
            ("ema_slow", self.ema_slow.value),
            ("rsi", self.rsi.value),
            ("bb_upper", bands.upper),
            ("bb_middle", bands.middle),
            ("bb_lower", bands.lower),
            ("atr", self.atr.value),
            ("vwap", self.vwap.value),
        )
        return {name: value for name, value in candidates if value == value}

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "bars": self.bars.state(),
            "ema_fast": self.ema_fast.state(),
            "ema_slow": self.ema_slow.state(),
            "rsi": self.rsi.state(),
            "bands": self.bands.state(),
            "atr": self.atr.state(),
            "vwap": self.vwap.state(),
            "crossings": [crossing.side for crossing in self.crossings],
        }
        if self.features is not None:
            state["features"] = self.features.state()
        return state

    def restore(self, state: Mapping[str, Any]) -> None:
        self.bars.restore(state["bars"])
        self.ema_fast.restore(state["ema_fast"])
        self.ema_slow.restore(state["ema_slow"])
        self.rsi.restore(state["rsi"])
        self.bands.restore(state["bands"])
        self.atr.restore(state["atr"])
        self.vwap.restore(state["vwap"])
        sides = state["crossings"]
        if len(sides) != len(self.crossings):
            raise ValueError(f"{len(sides)} crossing states, expected {len(self.crossings)}")
        for crossing, side in zip(self.crossings, sides, strict=True):
            crossing.side = int(side)
        if self.features is not None:
            self.features.restore(state["features"])


def _names(config: SignalConfig) -> tuple[str, str, str, str]:
    return (
        f"ema_cross({config.ema_fast},{config.ema_slow})",
        f"rsi({config.rsi_period})",
        f"bollinger({config.bollinger_period},{config.bollinger_width:g})",
        "vwap",
    )


def _in_atrs(distance: float, atr: float) -> float:
    """``distance`` in ATRs, capped at 1 (an ATR of 0 makes any distance full strength)."""
    return 1.0 if distance >= atr else distance / atr
