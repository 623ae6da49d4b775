"""`tradecore backtest --param indicator=model --param model=PATH` end to end: the follower trades the model's signals,
one order per change of the model's mind, and nothing else."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from streams.settings import KafkaSettings
from tests.streams.models.support import QUOTES, model_file
from tests.support.independent import IndependentReader
from tests.support.stack import drop_namespace

pytestmark = pytest.mark.integration

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def test_the_follower_trades_the_models_signals(
    kafka_settings: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    model = model_file(tmp_path)
    model_id = hashlib.sha256(model.read_bytes()).hexdigest()
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": kafka_settings.topic_prefix}
    subprocess.run([TRADECORE, "db", "upgrade"], env=env, check=True, capture_output=True)
    out = tmp_path / "report"
    done = subprocess.run(
        [TRADECORE, "backtest", "--data", str(QUOTES), "--instrument", "BTCUSDT", "--param", "indicator=model",
         "--param", f"model={model}", "--param", "bar_interval=PT0.1S", "--out", str(out), "--keep"],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    [prefix] = re.findall(r"namespace (\S+\.);", done.stdout)
    try:
        reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
        signals = reader.topic(prefix + "signals")
        orders = [e for e in reader.topic(prefix + "orders") if e["envelope"]["event_type"] == "OrderPlaced"]
        reader.close()
    finally:
        drop_namespace(endpoints.kafka_bootstrap, prefix)

    scored = sorted(
        (s for s in signals if s["indicator"] == f"model({model_id})"), key=lambda s: s["envelope"]["sequence"]
    )
    changes, last = [], None
    for signal in scored:
        if signal["direction"] != "FLAT" and signal["direction"] != last:
            changes.append(signal)
            last = signal["direction"]
    assert len(changes) >= 2, "the model must change its mind on this session"
    assert sorted(o["envelope"]["causation_id"] for o in orders) == sorted(
        str(s["envelope"]["event_id"]) for s in changes
    )
    assert all(o["side"] == ("BUY" if s["direction"] == "LONG" else "SELL") for o, s in zip(
        sorted(orders, key=lambda o: o["envelope"]["occurred_at"]), changes, strict=True))  # fmt: skip
    assert pl.read_parquet(out / "summary.parquet")["orders"][0] == len(changes)
