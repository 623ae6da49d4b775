"""`make demo`'s command end to end on the real stack: its summary, read from the query API, shows the whole loop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from api.demo import synthetic_quotes
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from deploy.local.stack import Endpoints
from domain.instruments import InstrumentRegistry
from streams.ingest.files import read
from tests.support.fake_exchange import serve
from tests.support.stack import drop_namespace

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


@pytest.mark.integration
def test_the_demo_trades_amends_cancels_and_is_refused_then_summarises(endpoints: Endpoints) -> None:
    done = subprocess.run(
        # Three times the recorded pace: each quote stamped as it is sent, the script done with half the feed to go.
        [TRADECORE, "demo", "--once", "--port", "28000", "--speed", "3"],
        env={**os.environ, **endpoints.as_env()},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-2])  # the last line is "stopped"
    drop_namespace(endpoints.kafka_bootstrap, summary["demo"])
    assert "recorded Binance BTCUSDT quotes" in summary["source"]
    assert summary["orders"].get("FILLED", 0) >= 5
    assert summary["orders"].get("CANCELLED", 0) >= 1
    assert summary["fills"] >= 5
    assert {"PRICE_COLLAR", "MAX_ORDER_QUANTITY", "KILL_SWITCH"} <= set(summary["rejections"])
    accounts = {p["account_id"] for p in summary["positions"]}
    assert "DEMO-1" in accounts
    assert {p["account_id"] for p in summary["pnl"]} == accounts


def test_without_recorded_data_the_demo_feeds_the_same_labelled_synthetic_quotes_every_run(tmp_path: Path) -> None:
    first = synthetic_quotes(tmp_path / "a.csv").read_bytes()
    assert synthetic_quotes(tmp_path / "b.csv").read_bytes() == first  # seeded: runs repeat
    frame, _ = read(tmp_path / "a.csv")
    ticks = [
        Tick(instrument="BTCUSDT", bid=b, ask=a, bid_size=bs, ask_size=az, exchange_ts=t)
        for t, b, a, bs, az in frame.select("time", "bid", "ask", "bid_size", "ask_size").rows()
    ]
    validate_ticks(IngestTicks(source="synthetic", ticks=ticks), InstrumentRegistry.from_file())  # all valid


@pytest.mark.integration
def test_with_source_live_the_demo_trades_on_exchange_tickers_through_ccxt(endpoints: Endpoints) -> None:
    """The exchange here is the local fake Binance (its tickers are the recorded 2021 quotes, so risk fails closed
    on their stale event times: every order is refused for its reference price, as it must be)."""
    with serve() as (_exchange, url):
        done = subprocess.run(
            [TRADECORE, "demo", "--once", "--source", "live", "--live-seconds", "15", "--port", "28100"],
            env={**os.environ, **endpoints.as_env(), "TRADECORE_EXCHANGE_BASE_URL": url},
            capture_output=True,
            text=True,
            timeout=600,
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-2])
    drop_namespace(endpoints.kafka_bootstrap, summary["demo"])
    assert summary["source"].startswith("LIVE binance BTC/USDT tickers through ccxt")
    assert summary["orders"].get("REJECTED", 0) >= 10
    assert "REFERENCE_PRICE_STALE" in summary["rejections"]
