"""`tradecore ingest file` a batch at a time writes the very bytes the per-record path wrote, and reports the same rows.

The reference is the per-record path as it was: every row through the per-row rules (``rows.tick_of``), the batch
through ``validate_ticks`` and ``CommandGateway.ingest_ticks`` (``decide.ingest_ticks``, one ``TickIngested`` object
per tick), each event encoded by fastavro as ``EventSerializer`` encodes it.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from commands.decide import Stamp
from commands.errors import CommandRejected
from commands.gateway import CommandGateway
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from domain.instruments import InstrumentRegistry
from schemas.events import TickIngested
from streams.errors import AppendFailed
from streams.ingest import files, rows
from streams.ingest.recorded import market_file
from tests.support.memory import EncodingEventLog, MemoryCommandStore
from tests.support.properties import example_count

INSTRUMENTS = InstrumentRegistry.from_file()
NOW = datetime(2026, 12, 3, 12, 0, 0, 123456, tzinfo=UTC)


def per_record(path: Path, instrument: str, batch: int) -> tuple[list[bytes], list[rows.Rejected], int]:
    """The per-record path: values, rejected rows and rounded values."""
    log = EncodingEventLog()
    gateway = CommandGateway(log, MemoryCommandStore(), INSTRUMENTS)
    frame, layout = files.read(path)
    layout = files.bar_layout(layout, frame, None)
    frame = frame.with_columns(pl.col("time") + layout.shift)
    first_line = 2 if layout.header and path.suffix == ".csv" else 1
    counts = rows.Converted(frame)
    rejected: list[rows.Rejected] = []
    for start in range(0, frame.height, batch):
        good: list[tuple[int, Tick]] = []
        for i, row in enumerate(frame.slice(start, batch).iter_rows(named=True)):
            tick = rows.tick_of(row, first_line + start + i, instrument, None, counts)
            if isinstance(tick, rows.Rejected):
                rejected.append(tick)
            else:
                good.append((first_line + start + i, tick))
        kept = []
        for line, tick in good:
            try:
                validate_ticks(IngestTicks(ticks=[tick]), INSTRUMENTS)
                kept.append(tick)
            except CommandRejected as err:
                rejected.append(rows.Rejected(line, "; ".join(v.message for v in err.violations)))
        if kept:
            stamp = Stamp(at=NOW, correlation_id=f"ingest-{path.name}")
            asyncio.run(gateway.ingest_ticks(IngestTicks(source=f"file:{path.name}", ticks=kept), stamp))
    return log.values, sorted(rejected, key=lambda r: r.line), counts.rounded


def batched(path: Path, instrument: str, batch: int) -> tuple[list[bytes], files.Report, EncodingEventLog]:
    log = EncodingEventLog()
    gateway = CommandGateway(log, MemoryCommandStore(), INSTRUMENTS)
    report = asyncio.run(files.ingest(gateway, path, instrument, batch=batch, clock=lambda: NOW))
    return log.values, report, log


RECORDED = [
    ("binance-btcusdt-quotes-2021-01-08.parquet", "BTCUSDT"),
    ("binance-btcusdt-trades-2021-01-08.parquet", "BTCUSDT"),
    ("bitmex-xbtusd-trades-2020-03-01.csv", "XBTUSD"),
    ("ftx-btcperp-bars-1m-2022-01.csv", "BTC-PERP"),
    ("histdata-eurusd-quotes-2020-01.csv", "EURUSD"),
    ("truefx-usdjpy-quotes-2013-01.csv", "USDJPY"),
]


def recorded(name: str, tmp_path: Path) -> Path:
    """The recorded file: whole under the default profile (`make test`); under `make unit`'s, a CSV's first fifth of
    lines, as that lane runs a fifth of each property's examples (the parquet files are small)."""
    path = market_file(name)
    if path.suffix != ".csv":
        return path
    lines = path.read_text().splitlines(keepends=True)
    keep = example_count(len(lines))
    if keep == len(lines):
        return path
    part = tmp_path / name
    part.write_text("".join(lines[:keep]))
    return part


@pytest.mark.parametrize(("name", "instrument"), RECORDED, ids=[r[0] for r in RECORDED])
def test_every_recorded_file_is_encoded_byte_for_byte_as_the_per_record_path_encoded_it(
    name: str, instrument: str, tmp_path: Path
) -> None:
    path = recorded(name, tmp_path)
    expected, expected_rejected, expected_rounded = per_record(path, instrument, 10_000)
    values, report, log = batched(path, instrument, 10_000)
    assert log.frames >= 1  # the batch path, not the per-record one
    assert len(values) == len(expected) == report.appended
    assert values == expected
    assert sorted(report.rejected, key=lambda r: r.line) == expected_rejected
    assert report.rounded == expected_rounded


def test_bad_and_unusual_rows_are_rejected_and_kept_exactly_as_the_per_record_path_does(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text(
        "timestamp,bid,ask,bid_size,ask_size\n"
        "2021-01-08T00:00:01Z,39432.99,39433.62,0.0031,1\n"
        "2021-01-08T00:00:02Z,abc,39433.62,,\n"  # line 3: not a number
        "yesterday,39432.99,39433.62,,\n"  # line 4: not a time
        "2021-01-08T00:00:03Z,39440.00,39433.62,,\n"  # line 5: bid above ask
        "2021-01-08T00:00:04Z,39432.995,39433.62,,\n"  # line 6: off the 0.01 tick
        "2021-01-08T00:00:05Z,3.94e4,39433.62,1e-05,0.031035000000000004\n"  # exponent, float noise: kept, rounded
        "2021-01-08T00:00:06Z,0,39433.62,,\n"  # line 8: a price of 0
        "2021-01-08T00:00:07Z,39433.00,39433.50,-1,\n"  # line 9: a negative size
        "2021-01-08T00:00:08Z,,,,\n"  # line 10: no price at all
        "2021-01-08T00:00:09Z,NaN,39433.50,,\n"  # line 11: not finite
        "2021-01-08T00:00:10Z,12345678901.5,,,\n"  # line 12: too many digits
        "2021-01-08T00:00:11Z,39433.00,39433.50,,\n"
        "2021-01-08T00:00:12Z,+39433.00,39433.50, 1 ,1_000\n"  # odd spellings of plain numbers: kept
        "2021-01-08T00:00:13Z,39433.00,39433.50,1E+20,\n"  # line 15: too many digits once spelled out
        "2021-01-08T00:00:14Z,39433.00,39433.50,0.123456785,0.123456775\n"  # ties: half even, down and up
        "2021-01-08T00:00:15Z,39433.00,39433.50,0.1234567850001,1.000000015\n"
        "2021-01-08T00:00:16Z,39433.00,39433.50,9999999999.999999999,\n"  # line 18: rounds to 11 digits
    )
    expected, expected_rejected, expected_rounded = per_record(path, "BTCUSDT", 4)
    values, report, _ = batched(path, "BTCUSDT", 4)
    rejected = sorted(report.rejected, key=lambda r: r.line)
    assert [r.line for r in rejected] == [3, 4, 5, 6, 8, 9, 10, 11, 12, 15, 18]
    assert rejected == expected_rejected
    assert "bid 39440.00 is above ask 39433.62" in rejected[2].reason  # the values as written
    assert report.rounded == expected_rounded == 6  # the refused row of line 18 counts its rounding too, as before
    assert values == expected and len(values) == 6


def test_stop_on_error_names_the_line_and_appends_nothing_of_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "quotes.csv"
    path.write_text("timestamp,bid,ask\n2021-01-08T00:00:01Z,1.00,2.00\n2021-01-08T00:00:02Z,2.00,1.00\n")
    log = EncodingEventLog()
    gateway = CommandGateway(log, MemoryCommandStore(), INSTRUMENTS)
    with pytest.raises(files.IngestFileError, match=r"quotes.csv:3: bid 2.00 is above ask 1.00"):
        asyncio.run(files.ingest(gateway, path, "BTCUSDT", on_error="stop", clock=lambda: NOW))
    assert log.events("ticks") == []


def test_ticks_from_several_batches_are_numbered_on_without_gaps(tmp_path: Path) -> None:
    path = market_file("histdata-eurusd-quotes-2020-01.csv")
    _, report, log = batched(path, "EURUSD", 1_000)
    events = sorted(log.events("ticks"), key=lambda e: e.envelope.sequence)
    assert log.frames == 10 and report.appended == len(events) == report.rows
    assert [e.envelope.sequence for e in events] == list(range(1, report.rows + 1))
    assert all(isinstance(e, TickIngested) and e.envelope.recorded_at == NOW for e in events)


def quotes(path: Path, count: int, bad_line: int | None = None) -> Path:
    """``count`` BTCUSDT quotes a second apart (line 2 onwards); the one on ``bad_line`` has its bid above its ask."""
    lines = ["timestamp,bid,ask"]
    for row in range(count):
        bid, ask = ("2.00", "1.00") if row + 2 == bad_line else ("1.00", "2.00")
        lines.append(f"2021-01-08T00:{row // 60:02d}:{row % 60:02d}Z,{bid},{ask}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_loads_of_several_chunks_write_the_ticks_in_row_order_numbered_on_across_loads(tmp_path: Path) -> None:
    log, store = EncodingEventLog(), MemoryCommandStore()
    gateway = CommandGateway(log, store, INSTRUMENTS)
    path = quotes(tmp_path / "quotes.csv", 95)
    report = asyncio.run(files.ingest(gateway, path, "BTCUSDT", batch=10, window=30, clock=lambda: NOW))
    written = log.events("ticks")  # one instrument, one partition: the order Kafka keeps
    assert report.appended == len(written) == 95 and log.frames == 10
    assert [e.envelope.sequence for e in written] == list(range(1, 96))
    assert [e.exchange_ts.second for e in written] == [row % 60 for row in range(95)]  # type: ignore[attr-defined]
    assert store.last_sequence("ticks", "BTCUSDT") == 95


def test_a_row_that_stops_a_load_midway_leaves_the_ticks_before_it_appended_and_committed(tmp_path: Path) -> None:
    log, store = EncodingEventLog(), MemoryCommandStore()
    gateway = CommandGateway(log, store, INSTRUMENTS)
    path = quotes(tmp_path / "quotes.csv", 50, bad_line=37)  # row 35: the fourth chunk of the first load
    with pytest.raises(files.IngestFileError, match=r"quotes.csv:37: .* \(stopped; 30 ticks appended before it\)"):
        asyncio.run(files.ingest(gateway, path, "BTCUSDT", on_error="stop", batch=10, window=40, clock=lambda: NOW))
    assert [e.envelope.sequence for e in log.events("ticks")] == list(range(1, 31))
    assert store.last_sequence("ticks", "BTCUSDT") == 30


def test_a_load_kafka_did_not_confirm_keeps_its_sequences_and_the_error_says_where_to_go_on(tmp_path: Path) -> None:
    """A load that failed may be in the log in part: its sequences are not handed out again, so no two ticks ever
    share an event id, and the file is taken up again from the first line of that load."""
    log = EncodingEventLog()
    log.refuse = lambda event: AppendFailed("not acknowledged") if event.envelope.sequence == 45 else None
    store = MemoryCommandStore()
    gateway = CommandGateway(log, store, INSTRUMENTS)
    path = quotes(tmp_path / "quotes.csv", 60)  # rows on lines 2-61; loads of 30: lines 2-31, 32-61
    going_on = r"the lines before 32 are in the log; .* go on with --from-line 32"
    with pytest.raises(
        files.IngestFileError, match=r"quotes.csv: Kafka did not confirm the ticks from line 32 on"
    ) as e:
        asyncio.run(files.ingest(gateway, path, "BTCUSDT", batch=10, window=30, clock=lambda: NOW))
    assert re.search(going_on, e.value.hint or "")
    assert store.last_sequence("ticks", "BTCUSDT") == 60  # the failed load's 31-60 stand
    assert [e.envelope.sequence for e in log.events("ticks")] == [s for s in range(1, 61) if s != 45]

    log.refuse = lambda _event: None
    report = asyncio.run(files.ingest(gateway, path, "BTCUSDT", batch=10, window=30, from_line=32, clock=lambda: NOW))
    assert report.appended == report.rows == 30 and store.last_sequence("ticks", "BTCUSDT") == 90
    written = log.events("ticks")
    assert [e.envelope.sequence for e in written[59:]] == list(range(61, 91))
    assert [e.exchange_ts.second for e in written[59:]] == list(range(30, 60))  # type: ignore[attr-defined]
    assert len({e.envelope.event_id for e in written}) == len(written)  # no id twice, whatever landed


def test_parquet_floats_read_as_the_decimal_their_repr_spells(tmp_path: Path) -> None:
    """Floats are read at column speed, yet as the very Decimal (digits and exponent) ``repr`` gives."""
    rng = np.random.default_rng(16)
    floats = [float(x) for x in rng.random(20_000) * 10.0 ** rng.integers(-12, 12, 20_000)]
    floats += [1e-05, 7.000000000000001e-06, 0.30000000000000004, 1e22, 2.0, -0.0, 5e-324]
    recorded = pl.read_parquet(market_file("binance-btcusdt-quotes-2021-01-08.parquet"))
    floats += recorded["bid_size"].to_list() + recorded["ask"].to_list()
    path = tmp_path / "floats.parquet"
    at = datetime(2021, 1, 8, tzinfo=UTC)
    pl.DataFrame({"timestamp": [at] * len(floats), "price": floats, "quantity": floats}).write_parquet(path)
    frame, _ = files.read(path)
    assert [Decimal(t).as_tuple() for t in frame["last"]] == [Decimal(repr(f)).as_tuple() for f in floats]


def test_a_float_that_is_no_number_is_refused_in_the_words_of_its_repr(tmp_path: Path) -> None:
    path = tmp_path / "trades.parquet"
    at = datetime(2021, 1, 8, tzinfo=UTC)
    prices = [39432.99, float("nan"), float("inf"), float("-inf")]
    pl.DataFrame({"timestamp": [at] * 4, "price": prices, "quantity": [1.0] * 4}).write_parquet(path)
    _, report, _ = batched(path, "BTCUSDT", 10)
    assert [(r.line, r.reason) for r in report.rejected] == [
        (2, "last 'nan' is not a finite number"),
        (3, "last 'inf' is not a finite number"),
        (4, "last '-inf' is not a finite number"),
    ]
