"""`tradecore train`: the walk-forward table beside the naive forecasts, and a model file the backtest can load."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.models import store
from tests.streams.models.support import SCIKIT_LEARN

pytestmark = SCIKIT_LEARN

QUOTES = str(market_file(BINANCE_QUOTES))


def test_train_prints_out_of_sample_accuracy_beside_the_baselines_and_writes_the_model(tmp_path: Path) -> None:
    out = tmp_path / "model.skops"
    args = ["train", "--data", QUOTES, "--instrument", "BTCUSDT", "--param", "bar_interval=PT0.1S", "--out", str(out)]
    done = CliRunner().invoke(app, args)

    assert done.exit_code == 0, done.output
    assert "majority" in done.output and "previous direction" in done.output
    assert done.output.count("%") >= 12  # three folds and the pooled row, each with three accuracies
    model = store.load(out)
    assert model.model_id == hashlib.sha256(out.read_bytes()).hexdigest()
    assert model.model_id in done.output


def test_bad_arguments_are_named() -> None:
    runner = CliRunner()
    unknown = runner.invoke(app, ["train", "--data", QUOTES, "--instrument", "BTCUSDT", "--model", "forest"])
    assert unknown.exit_code == 2 and "unknown --model 'forest'" in unknown.output

    few = runner.invoke(app, ["train", "--data", QUOTES, "--instrument", "BTCUSDT", "--folds", "50"])
    assert few.exit_code == 1 and "cannot make 50 walk-forward folds" in few.output

    wrong = runner.invoke(app, ["train", "--data", QUOTES, "--instrument", "BTCUSDT", "--param", "ema_fast=40"])
    assert wrong.exit_code == 2 and "ema_fast (40) must be shorter than ema_slow" in wrong.output
