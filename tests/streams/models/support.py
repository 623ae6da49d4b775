"""A small training set and models fitted on it, shared by the model tests (computed once per session)."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from domain.instruments import DEFAULT_FILE, InstrumentRegistry
from domain.signals import SignalConfig
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.models import store
from streams.models.dataset import TrainingSet, recorded_bars, training_set

if TYPE_CHECKING:
    from streams.models.training import Kind

# The tests that fit or load a model run on one xdist worker (`make unit` passes --dist loadgroup): scikit-learn
# (about 2 s of CPU to import) and the fitted training set are paid for once. For the same reason nothing here
# imports scikit-learn when a test module is collected.
SCIKIT_LEARN = pytest.mark.xdist_group("scikit-learn")

# 46 s of Binance quotes cut into 100 ms bars: ~340 bars, ~200 of them labelled — enough for three folds.
CONFIG = SignalConfig(bar_interval=timedelta(milliseconds=100))
QUOTES = market_file(BINANCE_QUOTES)


@functools.cache
def binance() -> TrainingSet:
    btcusdt = InstrumentRegistry.from_file(DEFAULT_FILE)["BTCUSDT"]
    return training_set(recorded_bars(QUOTES, btcusdt, CONFIG.bar_interval_us), CONFIG)


def model_file(folder: Path, kind: Kind = "logistic", seed: int = 0, rows: int | None = None) -> Path:
    """A model fitted on the first ``rows`` labelled bars (all by default), written to ``folder``."""
    from streams.models import training

    data = binance()
    if rows is not None:
        data = TrainingSet(data.start_us[:rows], data.rows[:rows], data.labels[:rows], data.bars, data.flat)
    path = folder / f"{kind}-{seed}-{rows}.skops"
    store.save(training.fit(data, kind, seed), CONFIG, path)
    return path
