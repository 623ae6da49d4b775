"""`tradecore backtest` over real quotes: its report equals an independent polars computation over its fills."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.settings import KafkaSettings
from tests.support.independent import IndependentReader
from tests.support.stack import drop_namespace

pytestmark = pytest.mark.integration

QUOTES = market_file(BINANCE_QUOTES)
TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def test_the_report_is_what_its_fills_say(kafka_settings: KafkaSettings, endpoints: Endpoints, tmp_path: Path) -> None:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": kafka_settings.topic_prefix}
    subprocess.run([TRADECORE, "db", "upgrade"], env=env, check=True, capture_output=True)
    out = tmp_path / "report"
    done = subprocess.run(
        [TRADECORE, "backtest", "--data", str(QUOTES), "--instrument", "BTCUSDT", "--param", "quantity=0.01",
         "--param", "ema_fast=3", "--param", "ema_slow=8", "--out", str(out), "--keep"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [prefix] = re.findall(r"namespace (\S+\.);", done.stdout)
    try:
        reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
        fills = [
            e
            for e in reader.topic(prefix + "executions")
            if e["envelope"]["event_type"] == "OrderFilled" and e["account_id"] == "BT-1"
        ]
        ticks = reader.topic(prefix + "ticks")
        reader.close()
    finally:
        drop_namespace(endpoints.kafka_bootstrap, prefix)
    assert len(ticks) == pl.read_parquet(QUOTES).height
    assert len(fills) >= 2, "the strategy must trade on this session"

    # Independently: cash and position from the fills, marked at the last quote's mid; average-cost realized PnL.
    f = pl.DataFrame(
        {
            "t": [e["envelope"]["occurred_at"] for e in fills],
            "q": [e["fill_quantity"] if e["side"] == "BUY" else -e["fill_quantity"] for e in fills],
            "p": [e["fill_price"] for e in fills],
            "fee": [e["fee"] for e in fills],
        }
    ).sort("t")
    position = sum(f["q"].to_list(), Decimal(0))
    cash = sum((-q * p - fee for q, p, fee in f.select("q", "p", "fee").iter_rows()), Decimal(0))
    last = max(ticks, key=lambda t: t["envelope"]["occurred_at"])
    pnl = cash + position * (last["bid"] + last["ask"]) / 2
    held, average, realized, wins, reducing = Decimal(0), Decimal(0), Decimal(0), 0, 0
    for q, p in f.select("q", "p").iter_rows():
        if held and (held > 0) != (q > 0):  # reducing (or flipping) realizes against the average cost
            closed = min(abs(q), abs(held))
            gain = closed * (p - average) * (1 if held > 0 else -1)
            realized += gain
            wins, reducing = wins + (gain > 0), reducing + 1
            average = average if abs(q) < abs(held) else p
        else:
            average = (average * abs(held) + p * abs(q)) / (abs(held) + abs(q))
        held += q

    # Equity at every quote: cash and position of the fills up to it, marked at its mid; the deepest fall from a peak.
    marks = sorted((t["envelope"]["occurred_at"], (t["bid"] + t["ask"]) / 2) for t in ticks)
    rows, i, pos, cash_now, peak, deepest = f.rows(), 0, Decimal(0), Decimal(0), None, Decimal(0)
    for at, mid in marks:
        while i < len(rows) and rows[i][0] <= at:
            pos, cash_now, i = pos + rows[i][1], cash_now - rows[i][1] * rows[i][2] - rows[i][3], i + 1
        equity = cash_now + pos * mid
        peak = equity if peak is None or equity > peak else peak
        deepest = max(deepest, peak - equity)

    summary = pl.read_parquet(out / "summary.parquet").row(0, named=True)
    assert Decimal(summary["max_drawdown"]) == deepest.quantize(Decimal("1e-8"))
    assert summary["win_rate"] == (wins / reducing if reducing else None)
    assert summary["fills"] == len(fills)
    assert Decimal(summary["final_position"]) == position
    assert Decimal(summary["fees"]) == sum(f["fee"].to_list(), Decimal(0))
    assert Decimal(summary["pnl"]) == pnl.quantize(Decimal("1e-8"))
    assert Decimal(summary["realized_pnl"]) == realized.quantize(Decimal("1e-8"))
    assert pl.read_parquet(out / "fills.parquet").height == len(fills)
    page = (out / "report.html").read_text()
    assert "<polyline" in page and "BTCUSDT" in page
