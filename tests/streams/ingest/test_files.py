"""`tradecore ingest file` over every recorded file: the right number of ticks, with the file's values, exactly."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from deploy.local.stack import Endpoints
from streams.ingest.recorded import market_file
from streams.settings import KafkaSettings
from tests.support.independent import IndependentReader

pytestmark = pytest.mark.integration

TRADECORE = str(Path(sys.executable).with_name("tradecore"))


def run(topics: KafkaSettings, endpoints: Endpoints, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **endpoints.as_env(), "TRADECORE_TOPIC_PREFIX": topics.topic_prefix}
    subprocess.run([TRADECORE, "db", "upgrade"], env=env, check=True, capture_output=True)
    return subprocess.run([TRADECORE, "ingest", "file", *args], env=env, capture_output=True, text=True, timeout=600)


def ticks(topics: KafkaSettings, endpoints: Endpoints) -> list[dict[str, Any]]:
    reader = IndependentReader(endpoints.kafka_bootstrap, endpoints.schema_registry_url)
    try:
        found = reader.topic(topics.topic_prefix + "ticks")
    finally:
        reader.close()
    return sorted(found, key=lambda t: t["envelope"]["sequence"])


def d(value: object) -> Decimal:
    """A recorded float or text as the exact decimal the file holds (floats by their shortest repr, 8 places)."""
    return Decimal(repr(value) if isinstance(value, float) else str(value)).quantize(Decimal("1e-8"))


# Each file, its instrument, and the expected first tick's fields computed here from the file with polars alone.
def binance_quotes() -> tuple[int, dict[str, Any]]:
    f = pl.read_parquet(market_file("binance-btcusdt-quotes-2021-01-08.parquet"))
    r = f.row(f.height - 1, named=True)
    return f.height, {"bid": d(r["bid"]), "ask": d(r["ask"]), "ask_size": d(r["ask_size"]), "at": r["timestamp"]}


def binance_trades() -> tuple[int, dict[str, Any]]:
    f = pl.read_parquet(market_file("binance-btcusdt-trades-2021-01-08.parquet"))
    r = f.row(f.height - 1, named=True)
    return f.height, {"last": d(r["price"]), "last_size": d(r["quantity"]), "at": r["timestamp"]}


def bitmex_trades() -> tuple[int, dict[str, Any]]:
    f = pl.read_csv(market_file("bitmex-xbtusd-trades-2020-03-01.csv"), infer_schema=False)
    r = f.row(f.height - 1, named=True)
    at = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(r["timestamp"]))
    return f.height, {"last": d(r["price"]), "last_size": d(r["amount"]), "at": at}


def ftx_bars() -> tuple[int, dict[str, Any]]:
    f = pl.read_csv(market_file("ftx-btcperp-bars-1m-2022-01.csv"), infer_schema=False)
    r = f.row(f.height - 1, named=True)
    # A one-minute bar is known when it closes: its start plus a minute.
    at = datetime.fromisoformat(r["timestamp"]).replace(tzinfo=UTC) + timedelta(minutes=1)
    return f.height, {"last": d(r["close"]), "last_size": d(r["volume"]), "at": at}


def histdata_quotes() -> tuple[int, dict[str, Any]]:
    f = pl.read_csv(market_file("histdata-eurusd-quotes-2020-01.csv"), has_header=False, infer_schema=False)
    stamp, bid, ask = f.row(f.height - 1)[:3]
    # histdata.com times are Eastern Standard Time all year (UTC-5, no daylight saving).
    at = datetime.strptime(stamp + "000", "%Y%m%d %H%M%S%f").replace(tzinfo=UTC) + timedelta(hours=5)
    return f.height, {"bid": d(bid), "ask": d(ask), "at": at}


def truefx_quotes() -> tuple[int, dict[str, Any]]:
    f = pl.read_csv(market_file("truefx-usdjpy-quotes-2013-01.csv"), infer_schema=False)
    r = f.row(f.height - 1, named=True)
    return f.height, {"bid": d(r["bid"]), "ask": d(r["ask"]), "at": datetime.fromisoformat(r["timestamp"])}


FILES = [
    ("binance-btcusdt-quotes-2021-01-08.parquet", "BTCUSDT", binance_quotes),
    ("binance-btcusdt-trades-2021-01-08.parquet", "BTCUSDT", binance_trades),
    ("bitmex-xbtusd-trades-2020-03-01.csv", "XBTUSD", bitmex_trades),
    ("ftx-btcperp-bars-1m-2022-01.csv", "BTC-PERP", ftx_bars),
    ("histdata-eurusd-quotes-2020-01.csv", "EURUSD", histdata_quotes),
    ("truefx-usdjpy-quotes-2013-01.csv", "USDJPY", truefx_quotes),
]


@pytest.mark.parametrize(("name", "instrument", "expected"), FILES, ids=[f[0] for f in FILES])
def test_every_recorded_file_becomes_one_tick_per_row_with_its_values(
    topics: KafkaSettings, endpoints: Endpoints, name: str, instrument: str, expected: Any
) -> None:
    rows, last = expected()
    done = run(topics, endpoints, str(market_file(name)), "--instrument", instrument)
    assert done.returncode == 0, done.stderr
    assert f"{rows:,} ticks from {rows:,} rows" in done.stdout

    found = ticks(topics, endpoints)
    assert len(found) == rows
    assert [t["envelope"]["sequence"] for t in found] == list(range(1, rows + 1))
    assert {t["instrument"] for t in found} == {instrument}
    tick = found[-1]
    for field, value in last.items():
        if field == "at":
            assert tick["exchange_ts"] == value.astimezone(UTC)
            assert tick["envelope"]["occurred_at"] == value.astimezone(UTC)
        else:
            assert tick[field] == value, field
    assert tick["source"] == f"file:{name}"


def test_bad_rows_are_reported_by_line_and_skipped_or_stop_the_run(
    topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    bad = tmp_path / "quotes.csv"
    bad.write_text(
        "timestamp,bid,ask\n"
        "2021-01-08T00:00:01Z,39432.99,39433.62\n"
        "2021-01-08T00:00:02Z,abc,39433.62\n"  # line 3: not a number
        "yesterday,39432.99,39433.62\n"  # line 4: not a time
        "2021-01-08T00:00:03Z,39440.00,39433.62\n"  # line 5: bid above ask
        "2021-01-08T00:00:04Z,39432.995,39433.62\n"  # line 6: off the 0.01 tick
        "2021-01-08T00:00:05Z,39433.00,39433.50\n"
    )
    stopped = run(topics, endpoints, str(bad), "--instrument", "BTCUSDT", "--on-error", "stop")
    assert stopped.returncode == 1
    assert f"{bad}:3: bid 'abc' is not a number" in stopped.stderr
    assert len(ticks(topics, endpoints)) == 0  # the batch holding the bad row was not appended

    rejects = tmp_path / "rejects.csv"
    skipped = run(topics, endpoints, str(bad), "--instrument", "BTCUSDT", "--rejects", str(rejects))
    assert skipped.returncode == 0, skipped.stderr
    assert "2 ticks from 6 rows" in skipped.stdout and "4 rows skipped" in skipped.stdout
    for line, why in ((3, "is not a number"), (4, "is not a time"), (5, "above ask"), (6, "tick size")):
        assert f"{bad}:{line}:" in skipped.stderr and why in skipped.stderr
    listed = pl.read_csv(rejects)
    assert listed["line"].to_list() == [3, 4, 5, 6]
    assert [t["bid"] for t in ticks(topics, endpoints)] == [Decimal("39432.99"), Decimal("39433.00")]


def test_a_run_goes_on_from_the_line_given_and_a_line_outside_the_rows_is_named(
    topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    """What a load Kafka did not confirm tells its user to do (streams.ingest.files: "go on with --from-line")."""
    quotes = tmp_path / "quotes.csv"
    quotes.write_text("timestamp,bid,ask\n" + "".join(f"2021-01-08T00:00:0{s}Z,1.0{s},2.00\n" for s in range(1, 6)))
    outside = run(topics, endpoints, str(quotes), "--instrument", "BTCUSDT", "--from-line", "7")
    assert outside.returncode == 1
    assert "--from-line 7 is not a row of the file" in outside.stderr and "lines 2-6" in outside.stderr
    done = run(topics, endpoints, str(quotes), "--instrument", "BTCUSDT", "--from-line", "4")
    assert done.returncode == 0, done.stderr
    assert "3 ticks from 3 rows" in done.stdout
    found = ticks(topics, endpoints)
    assert [t["bid"] for t in found] == [Decimal("1.03"), Decimal("1.04"), Decimal("1.05")]
    assert [t["envelope"]["sequence"] for t in found] == [1, 2, 3]


def test_speed_replays_the_recorded_gaps_scaled_and_columns_can_be_mapped(
    topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    custom = tmp_path / "feed.csv"
    custom.write_text("when,b,a\n1610064001000,39432.99,39433.62\n1610064003000,39433.00,39433.50\n1610064005000,1,2\n")
    started = time.monotonic()
    done = run(
        topics,
        endpoints,
        str(custom),
        "--instrument",
        "BTCUSDT",
        "--columns",
        "time=when,bid=b,ask=a",
        "--time-unit",
        "ms",
        "--speed",
        "x4",
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 4 / 4  # 4 s recorded, four times faster
    found = ticks(topics, endpoints)
    assert [t["exchange_ts"] for t in found] == [datetime(2021, 1, 8, 0, 0, s, tzinfo=UTC) for s in (1, 3, 5)]


def test_rebase_time_replays_a_recording_as_a_live_feed(
    topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    recorded = tmp_path / "quotes.csv"
    recorded.write_text("timestamp,bid,ask\n2021-01-08T00:00:01Z,39432.99,39433.62\n2021-01-08T00:00:03Z,1,2\n")
    before = datetime.now(UTC)
    done = run(topics, endpoints, str(recorded), "--instrument", "BTCUSDT", "--rebase-time")
    assert done.returncode == 0, done.stderr
    first, second = (t["exchange_ts"] for t in ticks(topics, endpoints))
    assert before <= first <= datetime.now(UTC)  # the file starts now
    assert second - first == timedelta(seconds=2)  # and keeps its gaps


def test_a_recording_replayed_live_and_faster_is_stamped_as_it_is_sent(
    topics: KafkaSettings, endpoints: Endpoints, tmp_path: Path
) -> None:
    """40 s recorded, replayed live at x8: kept, its gaps would put its last tick 35 s ahead of the clock, past
    the 5 s the API accepts."""
    recorded = tmp_path / "quotes.csv"
    recorded.write_text(
        "timestamp,bid,ask\n" + "".join(f"2021-01-08T00:00:{s:02d}Z,1.0{s // 20},2\n" for s in (0, 20, 40))
    )
    done = run(topics, endpoints, str(recorded), "--instrument", "BTCUSDT", "--rebase-time", "--speed", "x8")
    assert done.returncode == 0, done.stderr
    found = ticks(topics, endpoints)
    assert [t["bid"] for t in found] == [Decimal("1.00"), Decimal("1.01"), Decimal("1.02")]
    times = [t["exchange_ts"] for t in found]
    assert [later - earlier for earlier, later in itertools.pairwise(times)] == [timedelta(seconds=2.5)] * 2
    for tick in found:  # each stamped when it was sent: not ahead of the clock that took it in
        assert tick["exchange_ts"] <= tick["envelope"]["recorded_at"] + timedelta(milliseconds=100)
