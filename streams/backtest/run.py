"""`tradecore backtest`: recorded ticks through the very processors that trade live, in a namespace of their own.

The run appends the file's ticks to ``<prefix>backtest-<id>.ticks`` through the command gateway, runs every
processor (`tradecore worker`, a subprocess, as in production) with the strategy configured for one account, waits
until every processor has consumed everything upstream of it, then reads the fills, positions and ticks back from
the log and builds the report from them (``streams.backtest.report``). Nothing is simulated outside the
processors: the signals, risk checks, fills and positions are the events they wrote.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import ValidationError

from domain.signals.config import SignalConfig
from schemas.events import (
    Event,
    OrderAccepted,
    OrderExpired,
    OrderFilled,
    OrderRejected,
    PositionChanged,
    TickIngested,
)
from schemas.registry import registry_client
from schemas.settings import RegistrySettings
from streams.errors import StreamsError
from streams.kafka import KafkaSettings
from streams.replay.reader import TopicReader

STRATEGIES = {"follow": "follow one indicator's signals with a fixed clip (streams/strategy/follower.py)"}
STRATEGY_PARAMS = {"indicator": "ema_cross", "quantity": "0.01"}
MODEL_PARAM = "model"  # a model file for the signals processor (indicator=model follows its signals)


class BacktestError(StreamsError):
    """The backtest could not run as asked."""


@dataclass(frozen=True)
class Backtest:
    data: Path
    instrument: str
    strategy: str = "follow"
    params: Mapping[str, str] = field(default_factory=dict)
    account: str = "BT-1"
    keep: bool = False

    def strategy_env(self) -> dict[str, str]:
        """The worker's environment for this strategy and its parameters; unknown parameters are refused."""
        if self.strategy not in STRATEGIES:
            raise BacktestError(f"unknown strategy {self.strategy!r}", hint=f"known: {', '.join(STRATEGIES)}")
        signal_fields = set(SignalConfig.model_fields)
        unknown = sorted(set(self.params) - set(STRATEGY_PARAMS) - signal_fields - {MODEL_PARAM})
        if unknown:
            raise BacktestError(
                f"unknown --param {', '.join(unknown)}",
                hint=f"strategy: {', '.join(STRATEGY_PARAMS)}; signals: {', '.join(sorted(signal_fields))}",
            )
        chosen = {**STRATEGY_PARAMS, **{k: v for k, v in self.params.items() if k in STRATEGY_PARAMS}}
        try:
            Decimal(chosen["quantity"])
        except InvalidOperation as err:
            raise BacktestError(f"--param quantity={chosen['quantity']!r} is not a number") from err
        account = {"account_id": self.account, "instrument": self.instrument, **chosen}
        env = {"TRADECORE_STRATEGY_ACCOUNTS": json.dumps([account])}
        env |= {f"TRADECORE_SIGNALS_{k.upper()}": v for k, v in self.params.items() if k in signal_fields}
        try:  # the worker would refuse them too, after the ticks went in: fail now, and say which
            SignalConfig.model_validate({k: v for k, v in self.params.items() if k in signal_fields})
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'signals'}: {e['msg']}" for e in err.errors())
            raise BacktestError(
                f"--param: {problems}", hint="durations as ISO 8601 (bar_interval=PT1M) or HH:MM:SS"
            ) from err
        return env | self._model_env(chosen["indicator"])

    def _model_env(self, indicator: str) -> dict[str, str]:
        """The model file for the signals processor, loaded once here so a bad one fails before the ticks go in."""
        path = self.params.get(MODEL_PARAM)
        if path is None:
            if indicator == "model":
                raise BacktestError("indicator=model needs the model file", hint="add --param model=PATH")
            return {}
        from streams.models.store import load  # scikit-learn only when a model runs

        model = load(Path(path))
        trained = model.features.model_dump(mode="json")["bar_interval"]
        cut = SignalConfig.model_validate({k: v for k, v in self.params.items() if k == "bar_interval"}).bar_interval
        if model.features.bar_interval != cut:
            raise BacktestError(
                f"the model was trained on {trained} bars, the backtest would cut {cut} bars",
                hint=f"add --param bar_interval={trained}",
            )
        return {"TRADECORE_SIGNALS_MODEL": str(Path(path).resolve())}


def namespace(base: KafkaSettings) -> KafkaSettings:
    return base.model_copy(update={"topic_prefix": f"{base.topic_prefix}backtest-{uuid.uuid4().hex[:8]}."})


def read_topic(settings: KafkaSettings, registry: RegistrySettings, topic: str) -> list[Event]:
    """Every committed event of ``topic`` in the namespace, as ``tradecore replay`` reads it."""
    events: list[Event] = []
    with TopicReader(settings, registry_client(registry), topic) as reader:
        for record in reader.read(reader.ranges()):
            if record.event is None:
                raise BacktestError(f"{topic}[{record.partition}]@{record.offset} does not decode: {record.error}")
            events.append(record.event)
    return events


@dataclass(frozen=True)
class Outcomes:
    fills: list[OrderFilled]
    positions: list[PositionChanged]
    ticks: list[TickIngested]
    decisions: list[OrderAccepted | OrderRejected]
    expired: int


def outcomes(settings: KafkaSettings, registry: RegistrySettings, account: str, instrument: str) -> Outcomes:
    """The account's decisions, fills, expiries and positions, and the instrument's ticks, in event-time order."""
    executions = read_topic(settings, registry, "executions")
    fills = [
        e for e in executions if isinstance(e, OrderFilled) and e.account_id == account and e.instrument == instrument
    ]
    expired = sum(isinstance(e, OrderExpired) and e.account_id == account for e in executions)
    decisions = [
        e
        for e in read_topic(settings, registry, "orders.checked")
        if isinstance(e, OrderAccepted | OrderRejected) and e.account_id == account
    ]
    positions = [
        e
        for e in read_topic(settings, registry, "positions")
        if isinstance(e, PositionChanged) and e.account_id == account and e.instrument == instrument
    ]
    ticks = [e for e in read_topic(settings, registry, "ticks") if isinstance(e, TickIngested)]
    by_time: Callable[[Event], tuple[object, int]] = lambda e: (e.envelope.occurred_at, e.envelope.sequence)  # noqa: E731
    return Outcomes(
        sorted(fills, key=by_time), sorted(positions, key=by_time), sorted(ticks, key=by_time), decisions, expired
    )
