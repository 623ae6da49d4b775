"""A sweep trades a model's signals as `tradecore backtest --param indicator=model --param model=PATH` does."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.instruments import InstrumentRegistry
from streams.backtest.run import BacktestError
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.models.store import load
from streams.research import grid, replay
from tests.streams.models.support import SCIKIT_LEARN, model_file

pytestmark = SCIKIT_LEARN


def test_the_sweep_runs_the_model_and_the_strategy_follows_its_signals(tmp_path: Path) -> None:
    model = model_file(tmp_path)
    ticks = replay.file_ticks(market_file(BINANCE_QUOTES), "BTCUSDT", InstrumentRegistry.from_file())
    params = {"indicator": "model", "model": str(model), "bar_interval": "PT0.1S"}
    pipeline = replay.replay(ticks, replay.settings("BTCUSDT", "BT-1", params))

    signals = pipeline.events("signals")
    model_signals = {str(s.envelope.event_id) for s in signals if s.indicator == f"model({load(model).model_id})"}
    assert model_signals, "the model scores the closed bars"
    orders = pipeline.events("orders")
    assert orders, "the strategy must trade the model's signals"
    assert {str(o.envelope.causation_id) for o in orders} <= model_signals


def test_following_the_model_without_its_file_is_refused_before_any_point_runs() -> None:
    with pytest.raises(BacktestError, match="indicator=model needs the model file"):
        grid.grid({"quantity": ["0.01", "0.02"]}, {"indicator": "model"}, "BTCUSDT", "BT-1")


def test_a_model_file_can_be_swept_like_any_parameter(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    first, second = model_file(tmp_path / "a"), model_file(tmp_path / "b", seed=1)
    swept = grid.parse([f"model={first},{second}"])
    chosen = grid.grid(swept, {"indicator": "model", "bar_interval": "PT0.1S"}, "BTCUSDT", "BT-1")
    assert [p["model"] for p in chosen.points] == [str(first), str(second)]
