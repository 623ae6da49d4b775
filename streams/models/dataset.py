"""A training set from a recorded file: its ticks folded into bars and features exactly as the signals processor
folds them, labelled with the direction of the next bar's close.

The ticks are the ones `tradecore ingest file` (and so `tradecore backtest`) would append — the same reading of
the file, the same validation against the instrument (a refused row is left out here as it is there) — and go
through ``BarBuilder`` and ``FeatureSet``, the classes the engine runs, so the rows a model is trained on are the
rows it is scored on. The last bar of the file never closes (no later tick), as in the processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import polars as pl

from commands import decide
from commands.errors import CommandRejected
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from domain.instruments import Instrument
from domain.signals.bars import Bar, BarBuilder
from domain.signals.config import SignalConfig
from domain.signals.features import feature_rows
from streams.ingest import files

_STAMP = decide.Stamp(at=datetime(1970, 1, 1, tzinfo=UTC), correlation_id="train")  # envelopes are not features


@dataclass(frozen=True)
class TrainingSet:
    """One row per bar that has features and a next bar whose close differs from its own."""

    start_us: npt.NDArray[np.int64]  # the bar's start
    rows: npt.NDArray[np.float64]  # FEATURES
    labels: npt.NDArray[np.int8]  # 1: the next bar closed higher, 0: lower
    bars: int  # closed bars in the file
    flat: int  # bars left out because the next bar closed at the same price (no direction to learn)


def recorded_bars(path: Path, instrument: Instrument, interval_us: int) -> list[Bar]:
    """The closed bars of ``interval_us`` that the file's valid ticks make, in file order."""
    frame, layout = files.read(path)
    layout = files.bar_layout(layout, frame, None)
    shift = layout.shift // timedelta(microseconds=1)
    frame = frame.with_columns(pl.col("time") + pl.duration(microseconds=shift))
    report = files.Report(path, layout.name, rows=frame.height)
    first_line = 2 if layout.header and path.suffix.lower() == ".csv" else 1
    source = f"file:{path.name}"[:64]
    known = {instrument.symbol: instrument}
    builder = BarBuilder(interval_us)
    bars: list[Bar] = []
    sequence = 1
    for _, tick in files.ticks(frame, instrument.symbol, None, first_line, report):
        if not isinstance(tick, Tick):
            continue
        command = IngestTicks(source=source, ticks=[tick])
        try:
            validate_ticks(command, known)
        except CommandRejected:
            continue  # the backtest's ingest refuses it too: it never reaches the signals processor
        (event,) = decide.ingest_ticks(command, known, {instrument.symbol: sequence}, _STAMP)
        sequence += 1
        bar = builder.add(event)
        if bar is not None:
            bars.append(bar)
    return bars


def training_set(bars: list[Bar], config: SignalConfig) -> TrainingSet:
    """Features of each bar, labelled by the sign of the next bar's return (bars with a flat next bar left out)."""
    kept, rows = feature_rows(bars, config)
    closes = np.array([bar.close for bar in bars], dtype=np.float64)
    position = {bar.start_us: i for i, bar in enumerate(bars)}
    index = np.array([position[bar.start_us] for bar in kept], dtype=np.int64)
    has_next = index + 1 < len(bars)
    index, rows = index[has_next], rows[has_next]
    change = closes[index + 1] - closes[index]
    moved = change != 0.0
    return TrainingSet(
        start_us=np.array([bars[i].start_us for i in index[moved]], dtype=np.int64),
        rows=rows[moved],
        labels=(change[moved] > 0.0).astype(np.int8),
        bars=len(bars),
        flat=int((~moved).sum()),
    )
