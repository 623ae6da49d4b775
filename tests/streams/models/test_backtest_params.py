"""`tradecore backtest --param model=PATH`: the worker is told the model file, and a model that cannot run is refused
before any tick goes in."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.backtest.run import Backtest, BacktestError
from streams.models.errors import ModelFileError
from tests.streams.models.support import QUOTES, SCIKIT_LEARN, model_file

pytestmark = SCIKIT_LEARN


def job(**params: str) -> Backtest:
    return Backtest(QUOTES, "BTCUSDT", params=params)


def test_the_worker_gets_the_model_file_and_the_strategy_follows_it(tmp_path: Path) -> None:
    model = model_file(tmp_path)
    env = job(indicator="model", model=str(model), bar_interval="PT0.1S").strategy_env()

    assert env["TRADECORE_SIGNALS_MODEL"] == str(model.resolve())
    assert env["TRADECORE_SIGNALS_BAR_INTERVAL"] == "PT0.1S"
    assert '"indicator": "model"' in env["TRADECORE_STRATEGY_ACCOUNTS"]


def test_following_the_model_without_a_model_file_is_refused() -> None:
    with pytest.raises(BacktestError, match="indicator=model needs the model file"):
        job(indicator="model").strategy_env()


def test_a_model_trained_on_other_bars_is_refused_with_the_interval_to_use(tmp_path: Path) -> None:
    with pytest.raises(BacktestError, match=r"trained on PT0.1S bars.*\n.*--param bar_interval=PT0.1S"):
        job(indicator="model", model=str(model_file(tmp_path))).strategy_env()


def test_a_file_that_is_not_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.skops").write_text("not a model")
    with pytest.raises(ModelFileError, match="not a skops model file"):
        job(indicator="model", model=str(tmp_path / "notes.skops"), bar_interval="PT0.1S").strategy_env()
