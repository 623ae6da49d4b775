"""One backtest in process: a file's ticks through the processors `tradecore worker` hosts, wired as in Kafka.

The ticks are the events ``tradecore ingest file`` would append (the same reading, validation and
``commands.decide.ingest_ticks``), stamped as recorded at the first tick's time instead of the wall clock, so two
runs over one file derive identical events. The processors are those of ``streams.worker`` with the backtest's
strategy and signal settings — the very classes, not copies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import ValidationError

from commands.decide import Stamp, ingest_ticks
from commands.errors import CommandRejected
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from domain.instruments import InstrumentRegistry
from domain.signals.config import SignalConfig
from schemas.events import TickIngested
from streams.backtest.run import MODEL_PARAM, STRATEGY_PARAMS, BacktestError
from streams.host.processor import Processor
from streams.ingest import files
from streams.processors import ProcessorSettings, SignalsProcessor, signal_engine
from streams.research.harness import Pipeline
from streams.strategy.follower import FollowedAccount
from streams.worker import PROCESSORS

# What each processor writes, and from which inputs (the host learns it from the events' routes; the harness must
# know it beforehand to tell what can still come). Risk decides on orders; fills, positions and ticks only update
# what it knows (domain.risk.engine): if that changed, the harness would stop and say so.
WRITES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "risk": (("orders.checked",), ("orders",)),
    "execution": (("executions",), ("orders.checked", "ticks")),
    "executions-by-account": (("executions.by-account",), ("executions",)),
    "positions": (("positions",), ("executions.by-account",)),
    "signals": (("signals",), ("ticks",)),
    "strategy": (("orders",), ("signals",)),
}
CHUNK = 10_000  # ticks per IngestTicks command, its most


@dataclass(frozen=True)
class Settings:
    """A backtest's strategy and signal settings, checked."""

    account: FollowedAccount
    signals: SignalConfig
    model: Path | None = None  # the model file `indicator=model` scores with


def known_params() -> set[str]:
    """Every parameter a backtest takes: the strategy's, the signal engine's and the model file."""
    return set(STRATEGY_PARAMS) | set(SignalConfig.model_fields) | {MODEL_PARAM}


def settings(instrument: str, account: str, params: Mapping[str, str]) -> Settings:
    """``params`` (indicator, quantity and any signal setting) checked as `tradecore backtest --param` checks them.

    Raises:
        BacktestError: an unknown parameter or a bad value, named.
    """
    signal_fields = set(SignalConfig.model_fields)
    unknown = sorted(set(params) - known_params())
    if unknown:
        raise BacktestError(
            f"unknown parameter {', '.join(unknown)}",
            hint=f"strategy: {', '.join(STRATEGY_PARAMS)}; signals: {', '.join(sorted(signal_fields))}; {MODEL_PARAM}",
        )
    chosen = {**STRATEGY_PARAMS, **{k: v for k, v in params.items() if k in STRATEGY_PARAMS}}
    try:
        followed = FollowedAccount(account_id=account, instrument=instrument, **chosen)
        signals = SignalConfig.model_validate({k: v for k, v in params.items() if k in signal_fields})
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in err.errors())
        raise BacktestError(
            f"{', '.join(f'{k}={v}' for k, v in params.items())}: {problems}",
            hint="durations as ISO 8601 (bar_interval=PT1M) or HH:MM:SS; ema_fast below ema_slow",
        ) from err
    model = params.get(MODEL_PARAM)
    if model is None and followed.indicator == "model":
        raise BacktestError("indicator=model needs the model file", hint="add --param model=PATH")
    return Settings(followed, signals, None if model is None else Path(model))


def file_ticks(path: Path, instrument: str, instruments: InstrumentRegistry) -> list[TickIngested]:
    """The ticks `tradecore ingest file` appends for ``path`` (rows it would reject are left out, as it skips them).

    Raises:
        IngestFileError: the file cannot be read, or the instrument is unknown.
    """
    frame, layout = files.read(path)
    layout = files.bar_layout(layout, frame, None)
    frame = frame.with_columns(pl.col("time") + layout.shift)
    if instrument not in instruments:
        raise files.IngestFileError(f"unknown instrument {instrument}", hint=f"known: {', '.join(sorted(instruments))}")
    report = files.Report(path, layout.name, rows=frame.height)
    first_line = 2 if layout.header and path.suffix.lower() == ".csv" else 1
    read = [t for _, t in files.ticks(frame, instrument, None, first_line, report) if isinstance(t, Tick)]
    good: list[Tick] = []
    for start in range(0, len(read), CHUNK):
        chunk = read[start : start + CHUNK]
        try:
            validate_ticks(IngestTicks(ticks=chunk), instruments)
            good.extend(chunk)
        except CommandRejected:  # rare: find the rows it rejects, one by one
            good.extend(t for t in chunk if _valid(t, instruments))
    if not good:
        return []
    stamp = Stamp(at=good[0].exchange_ts, correlation_id=f"ingest-{path.name}")
    source = f"file:{path.name}"[:64]
    events: list[TickIngested] = []
    for start in range(0, len(good), CHUNK):
        command = IngestTicks(source=source, ticks=good[start : start + CHUNK])
        events.extend(ingest_ticks(command, instruments, {instrument: len(events) + 1}, stamp))
    return events


def _valid(tick: Tick, instruments: InstrumentRegistry) -> bool:
    try:
        validate_ticks(IngestTicks(ticks=[tick]), instruments)
    except CommandRejected:
        return False
    return True


def processors(chosen: Settings, base: ProcessorSettings | None = None) -> list[Processor]:
    """The worker's processors, the strategy trading ``chosen.account`` on signals made with ``chosen.signals``."""
    base = base or ProcessorSettings()
    configured = base.model_copy(update={"strategy_accounts": [chosen.account]})
    built = [build(configured) for build in PROCESSORS.values()]
    for processor in built:
        if isinstance(processor, SignalsProcessor):
            processor.engine = signal_engine(chosen.signals, chosen.model)
    return built


def replay(ticks: Sequence[TickIngested], chosen: Settings, partitions: int = 6) -> Pipeline:
    """Run ``ticks`` through the processors to the end; the pipeline holds every topic's records."""
    built = processors(chosen)
    pipeline = Pipeline(built, partitions)
    for processor in built:
        topics, derived_from = WRITES[processor.name]
        pipeline.writes(processor, topics, derived_from)
    for tick in ticks:
        pipeline.append("ticks", tick)
    pipeline.run()
    return pipeline
