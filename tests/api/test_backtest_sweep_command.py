"""`tradecore backtest --sweep`: a small grid end to end through the command, and its refusals of bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from api.cli import app
from domain.instruments import InstrumentRegistry
from schemas.events import OrderFilled
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.research import replay

QUOTES = market_file(BINANCE_QUOTES)
TRADECORE = str(Path(sys.executable).with_name("tradecore"))
BASE = ["backtest", "--data", str(QUOTES), "--instrument", "BTCUSDT"]


@pytest.mark.integration  # worker processes over real quotes: too slow for the unit lane, though it needs no stack
def test_a_walk_forward_sweep_writes_its_rows_and_report(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = subprocess.run(
        [TRADECORE, *BASE, "--param", "quantity=0.01", "--sweep", "ema_fast=3,5", "--sweep", "ema_slow=8,13",
         "--walk-forward", "2", "--jobs", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=600, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rows = pl.read_parquet(out / "sweep.parquet")
    assert rows.height == 4 * 2  # grid points x folds
    assert {"ema_fast", "ema_slow", "fold", "pnl", "sharpe", "max_drawdown", "win_rate", "trades", "fees",
            "in_sample_sharpe", "chosen"} <= set(rows.columns)  # fmt: skip
    assert rows.filter(pl.col("fold") == 1)["chosen"].sum() == 1  # one choice per out-of-sample fold
    assert rows.filter(pl.col("fold") == 0)["in_sample_sharpe"].null_count() == 4
    # Each point's folds add up to its whole run, as the harness replays it in this process.
    ticks = replay.file_ticks(QUOTES, "BTCUSDT", InstrumentRegistry.from_file())
    for (fast, slow), folds in rows.group_by(["ema_fast", "ema_slow"]):
        chosen = replay.settings("BTCUSDT", "BT-1", {"quantity": "0.01", "ema_fast": fast, "ema_slow": slow})
        fills = [e for e in replay.replay(ticks, chosen).events("executions") if isinstance(e, OrderFilled)]
        assert folds["trades"].sum() == len(fills), (fast, slow)
        assert folds["fees"].sum() == pytest.approx(float(sum(f.fee for f in fills)))
    page = (out / "report.html").read_text()
    assert "id='heatmap'" in page and page.count("class='cell'") == 4
    assert "id='folds'" in page and "<polyline" in page
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--sweep", "ema_fastest=3,5"], "ema_fastest: unknown parameter"),
        (["--sweep", "ema_fast=3,x", "--sweep", "ema_slow=13"], "ema_fast=x is refused"),
        (["--sweep", "ema_fast=3,5", "--walk-forward", "1"], "walk-forward needs at least 2 folds"),
        (["--sweep", "ema_fast=3,5", "--walk-forward", "40"], "451 ticks are too few for 40 folds"),
        (["--sweep", "ema_fast=3,5", "--jobs", "0"], "--jobs 0"),
        (["--walk-forward", "3"], "go with --sweep"),
    ],
)
def test_bad_sweeps_are_refused_with_what_is_wrong(args: list[str], says: str) -> None:
    result = CliRunner().invoke(app, [*BASE, *args])
    assert result.exit_code != 0
    assert says in " ".join(result.output.split()), result.output
