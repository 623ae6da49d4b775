"""`tradecore ingest ccxt` against a local Binance that replays the real BTCUSDT quotes and trades, on real Kafka."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from api import db
from deploy.local.stack import Endpoints
from streams.settings import KafkaSettings
from tests.support.fake_exchange import FakeBinance, cli_options, recorded_trades, serve
from tests.support.independent import read_topic

pytestmark = pytest.mark.integration
TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def ingest(endpoints: Endpoints, prefix: str, base_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    command = [TRADECORE, "ingest", "ccxt", "binance", "BTC/USDT", *cli_options(base_url), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def ticks(endpoints: Endpoints, prefix: str) -> list[dict[str, object]]:
    return read_topic(endpoints.kafka_bootstrap, endpoints.schema_registry_url, prefix + "ticks")


@pytest.fixture
def write_side(endpoints: Endpoints, topics: KafkaSettings) -> KafkaSettings:
    db.upgrade(endpoints.database_url)
    return topics


def test_ingest_appends_exactly_what_the_exchange_served_through_faults(
    endpoints: Endpoints, write_side: KafkaSettings
) -> None:
    prefix = write_side.topic_prefix
    with serve(FakeBinance(trades_per_poll=37)) as (exchange, url):
        exchange.inject("429", path="/api/v3/ticker/24hr")
        exchange.inject("drop", path="/api/v3/aggTrades", times=3)  # a connection lost three times running
        exchange.inject("500", path="/api/v3/ticker/24hr")
        done = ingest(endpoints, prefix, url, "--interval", "0.05", "--max-events", "400")
        assert done.returncode == 0, done.stdout + done.stderr
        served_quotes, served_trades = list(exchange.served_quotes), dict(exchange.served_trades)
        statuses = {status for _, _, status in exchange.requests}

    assert {0, 429, 500} <= statuses, "every injected fault was answered"
    assert "retries" in done.stdout and ", 0 retries" not in done.stdout
    events = ticks(endpoints, prefix)
    assert len(events) == 400
    assert [e["envelope"]["sequence"] for e in events] == list(range(1, 401)), "one gap-free numbering"
    assert len({e["envelope"]["event_id"] for e in events}) == 400

    quotes = [e for e in events if e["bid"] is not None]
    trades = [e for e in events if e["last"] is not None]
    assert len(quotes) + len(trades) == 400 and quotes and trades
    # Every quote as served, in order (the last one served may not have fitted under --max-events).
    got_quotes = [(q["bid"], q["bid_size"], q["ask"], q["ask_size"], _ms(q)) for q in quotes]
    want_quotes = [(q.bid, q.bid_size, q.ask, q.ask_size, q.time_ms) for q in served_quotes]
    assert got_quotes == want_quotes[: len(got_quotes)] and len(want_quotes) - len(got_quotes) <= 1
    # Trades: the first ones recorded, each once, none skipped, with the exchange's exact values.
    recorded = recorded_trades()[: len(trades)]
    assert all(t.trade_id in served_trades for t in recorded)
    got_trades = sorted((_ms(t), t["last"], t["last_size"]) for t in trades)
    assert got_trades == sorted((t.time_ms, t.price, t.quantity) for t in recorded)
    assert all(e["venue"] == "BINANCE" and e["source"] == "ccxt-binance" for e in events)
    assert all(isinstance(e["last"] or e["bid"], Decimal) for e in events)


def test_unknown_instrument_fails_with_what_to_do(endpoints: Endpoints, write_side: KafkaSettings) -> None:
    with serve() as (_exchange, url):
        env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": write_side.topic_prefix}
        done = subprocess.run(
            [TRADECORE, "ingest", "ccxt", "binance", "ETH/BTC", *cli_options(url), "--max-events", "5"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "ETHBTC (ETH/BTC) is not in the instrument registry" in done.stderr
    assert "tradecore instruments import binance --symbols ETH/BTC" in done.stderr
    assert ticks(endpoints, write_side.topic_prefix) == []


def _ms(event: dict[str, object]) -> int:
    at = event["exchange_ts"]
    return int(at.timestamp() * 1000)  # type: ignore[attr-defined]


def test_ctrl_c_stops_cleanly_with_everything_acknowledged(endpoints: Endpoints, write_side: KafkaSettings) -> None:
    prefix = write_side.topic_prefix
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": prefix}
    with serve() as (exchange, url):
        command = [TRADECORE, "ingest", "ccxt", "binance", "BTCUSDT", "--no-trades", "--interval", "0.1"]
        proc = subprocess.Popen([*command, *cli_options(url)], env=env, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while exchange.served("/api/v3/ticker/24hr") < 10:
            assert proc.poll() is None and time.monotonic() < deadline, "the ingest did not get going"
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
        served = list(exchange.served_quotes)
    assert proc.returncode == 0, out
    events = ticks(endpoints, prefix)
    assert f"stopped: {len(events)} ticks ({len(events)} quotes, 0 trades)" in out
    assert all(e["last"] is None for e in events), "--no-trades: quotes only"
    assert [(e["bid"], e["ask"]) for e in events] == [(q.bid, q.ask) for q in served][: len(events)]
    assert len(served) - len(events) <= 1  # a quote fetched as Ctrl-C came is not appended half-way
