"""Recorded market data from files (CSV, Parquet) into TickIngested events.

A file is read with polars and mapped to ticks by a ``Layout``: which column holds the time, and which the bid, ask,
last price and sizes. The layouts of common recorded formats are detected from the header (see ``LAYOUTS``); any
other file is read with ``--columns``. Prices stay exact: CSV cells are read as text and parquet floats through
their shortest representation, both into ``Decimal`` — never through float arithmetic.

Ticks go through the command gateway like ``POST /v1/ticks``: the same validation (instrument known, prices on its
tick size, bid not above ask), the same per-instrument sequences, an idempotent ``acks=all`` producer. A row that
breaks a rule is reported with its line; the run skips it or stops there, as the caller chooses — never silently.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import polars as pl
from pydantic import ValidationError

from commands.decide import Stamp
from commands.errors import CommandRejected
from commands.gateway import CommandGateway
from commands.models import IngestTicks, Tick
from commands.validation import validate_ticks
from streams.errors import StreamsError

Kind = Literal["quotes", "trades", "bars"]
PRICE_FIELDS = ("bid", "ask", "last", "bid_size", "ask_size", "last_size")
SCALE = 8  # decimal places of prices and sizes in the events (decimal(18, 8))
_QUANTUM = Decimal(1).scaleb(-SCALE)
_TICK_PATH = re.compile(r"^ticks\[(\d+)\]")


class IngestFileError(StreamsError):
    """The file cannot be ingested as asked (unreadable, unknown layout, a bad row with on_error=stop)."""


@dataclass(frozen=True)
class Layout:
    """Where a file keeps each part of a tick.

    ``time``: the column of event time: a datetime column, epoch numbers (``time_unit``), or text parsed with
    ``time_format`` (polars/chrono syntax; ISO 8601 when None) in ``time_zone`` when it carries no offset.
    ``prices``: tick field (bid, ask, last, bid_size, ask_size, last_size) -> column.
    ``shift``: added to each time (a bar is known when it closes: its start plus its interval).
    """

    name: str
    kind: Kind
    time: str
    prices: dict[str, str]
    time_unit: Literal["us", "ms", "s"] | None = None
    time_format: str | None = None
    time_zone: str = "UTC"
    shift: timedelta = timedelta(0)
    header: bool = True
    columns: tuple[str, ...] = ()  # names for a file without a header


LAYOUTS: tuple[Layout, ...] = (
    Layout("quotes with sizes", "quotes", "timestamp", {p: p for p in ("bid", "ask", "bid_size", "ask_size")}),
    Layout("quotes", "quotes", "timestamp", {"bid": "bid", "ask": "ask"}),
    Layout("trades", "trades", "timestamp", {"last": "price", "last_size": "quantity"}),
    # tardis.dev normalised trades (e.g. BitMEX): epoch microseconds, size in "amount".
    Layout("tardis trades", "trades", "timestamp", {"last": "price", "last_size": "amount"}, time_unit="us"),
    Layout("bars (OHLCV)", "bars", "timestamp", {"last": "close", "last_size": "volume"}),
    # histdata.com ASCII ticks: no header, "YYYYMMDD HHMMSSfff,bid,ask,volume", EST without daylight saving.
    Layout(
        "histdata ticks",
        "quotes",
        "timestamp",
        {"bid": "bid", "ask": "ask"},
        time_format="%Y%m%d %H%M%S%3f",
        time_zone="Etc/GMT+5",  # fixed UTC-5 (the IANA name inverts the sign)
        header=False,
        columns=("timestamp", "bid", "ask", "volume"),
    ),
)


@dataclass(frozen=True)
class Rejected:
    """A row that did not become a tick, and why."""

    line: int  # 1-based line of a CSV (header included), or 1-based row of a parquet file
    reason: str


@dataclass
class Report:
    """What an ingest did."""

    path: Path
    layout: str
    rows: int = 0
    appended: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rounded: int = 0  # values with more than 8 decimal places, rounded to 8
    seconds: float = 0.0
    first_event_time: datetime | None = None
    last_event_time: datetime | None = None

    @property
    def per_s(self) -> float:
        return self.appended / self.seconds if self.seconds else 0.0


# -- reading -------------------------------------------------------------------------------------------------------
def read(path: Path, layout: Layout | None = None) -> tuple[pl.DataFrame, Layout]:
    """The file as a frame with columns ``time`` (UTC, µs) and the tick fields as text, plus the layout used."""
    if not path.is_file():
        raise IngestFileError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet", ".pq"):
        raise IngestFileError(f"{path}: not a .csv or .parquet file", hint="convert it, or name it by its format")
    try:
        frame, layout = _read_csv(path, layout) if suffix == ".csv" else (pl.read_parquet(path), layout)
    except (OSError, pl.exceptions.PolarsError) as err:
        raise IngestFileError(f"{path}: cannot read it: {err}") from err
    layout = layout or detect(frame.columns, path)
    missing = [c for c in (layout.time, *layout.prices.values()) if c not in frame.columns]
    if missing:
        raise IngestFileError(
            f"{path}: the {layout.name} layout needs columns {', '.join(missing)}; the file has "
            f"{', '.join(frame.columns)}",
            hint="map them with --columns time=COL,bid=COL,ask=COL,last=COL,...",
        )
    return _normalise(frame, layout), layout


def _read_csv(path: Path, layout: Layout | None) -> tuple[pl.DataFrame, Layout | None]:
    if layout is None:
        first = path.open().readline()
        layout = next((known for known in LAYOUTS if not known.header and re.match(r"^\d{8} \d{9},", first)), None)
    if layout is not None and not layout.header:
        frame = pl.read_csv(path, has_header=False, new_columns=list(layout.columns), infer_schema=False)
        return frame, layout
    return pl.read_csv(path, infer_schema=False), layout  # text: decimals stay exactly as written


def detect(columns: Sequence[str], path: Path) -> Layout:
    """The first known layout whose columns the file has."""
    present = set(columns)
    for layout in LAYOUTS:
        if layout.header and {layout.time, *layout.prices.values()} <= present:
            return layout
    raise IngestFileError(
        f"{path}: columns {', '.join(columns)} match no known layout ({'; '.join(layout.name for layout in LAYOUTS)})",
        hint="name the columns with --columns time=COL,bid=COL,ask=COL (and last, bid_size, ask_size, last_size)",
    )


def _normalise(frame: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    source = pl.col(layout.time)
    dtype = frame.schema[layout.time]
    if isinstance(dtype, pl.Datetime):
        when = source if dtype.time_zone else source.dt.replace_time_zone(layout.time_zone)
    elif layout.time_unit is not None:
        when = pl.from_epoch(source.cast(pl.Int64, strict=False), time_unit=layout.time_unit)
        when = when.dt.replace_time_zone("UTC")
    else:
        text = source.cast(pl.Utf8)
        if "%z" in (layout.time_format or "") or (layout.time_format is None and _has_offsets(frame[layout.time])):
            when = text.str.to_datetime(layout.time_format, time_unit="us", strict=False, time_zone="UTC")
        else:
            when = text.str.to_datetime(layout.time_format, time_unit="us", strict=False)
            when = when.dt.replace_time_zone(layout.time_zone)
    columns = [
        when.dt.convert_time_zone("UTC").dt.cast_time_unit("us").alias("time"),
        source.cast(pl.Utf8).alias("raw_time"),
    ]
    for name, column in layout.prices.items():
        value = pl.col(column)
        if frame.schema[column].is_float():
            # The shortest text that reads back as the same float: the decimal the recorder wrote.
            value = value.map_elements(repr, return_dtype=pl.Utf8)
        columns.append(value.cast(pl.Utf8).alias(name))
    return frame.select(columns)


def _has_offsets(times: pl.Series) -> bool:
    sample = times.cast(pl.Utf8).drop_nulls().head(1)
    return bool(len(sample)) and bool(re.search(r"(Z|[+-]\d\d:?\d\d)$", sample[0]))


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def bar_layout(layout: Layout, frame: pl.DataFrame, interval: timedelta | None) -> Layout:
    """A bar's tick is stamped at the bar's close: its start plus the interval (given, or the most common gap)."""
    if layout.kind != "bars" or layout.shift:
        return layout
    if interval is None:
        gaps = frame["time"].diff().drop_nulls()
        common = gaps.mode().sort()
        if not len(common):
            raise IngestFileError("cannot tell the bar interval from one bar", hint="give --bar-interval 1m")
        interval = common[0]
    assert interval is not None
    return replace(layout, shift=interval)


# -- rows to ticks -----------------------------------------------------------------------------------------------
def ticks(
    frame: pl.DataFrame, instrument: str, venue: str | None, first_line: int, report: Report
) -> Iterator[tuple[int, Tick | Rejected]]:
    """Each row with its line: a Tick, or the reason it is not one (bad number, bad time, out of range).

    Digits past the events' 8 decimal places are rounded away (half even) and counted in ``report.rounded``: in
    recorded files they are the noise of a float that went through arithmetic (``0.031035000000000004``).
    """
    for i, row in enumerate(frame.iter_rows(named=True)):
        line = first_line + i
        when = row["time"]
        if when is None:
            yield line, Rejected(line, f"time {row['raw_time']!r} is not a time this layout reads")
            continue
        values: dict[str, Decimal] = {}
        bad = None
        for name in PRICE_FIELDS:
            text = row.get(name)
            if text is None or text == "":
                continue
            try:
                value = Decimal(text)
            except InvalidOperation:
                bad = f"{name} {text!r} is not a number"
                break
            if not value.is_finite():
                bad = f"{name} {text!r} is not a finite number"
                break
            if -int(value.as_tuple().exponent) > SCALE:
                value = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
                report.rounded += 1
            values[name] = value
        if bad is not None:
            yield line, Rejected(line, bad)
            continue
        try:
            yield line, Tick(instrument=instrument, venue=venue, exchange_ts=when.replace(tzinfo=UTC), **values)
        except ValidationError as err:
            reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
            yield line, Rejected(line, reason)


# -- appending ---------------------------------------------------------------------------------------------------
async def ingest(
    gateway: CommandGateway,
    path: Path,
    instrument: str,
    *,
    venue: str | None = None,
    layout: Layout | None = None,
    speed: float | None = None,
    on_error: Literal["skip", "stop"] = "skip",
    batch: int = 2000,
    bar_interval: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
    correlation_id: str | None = None,
    rebase: bool = False,
) -> Report:
    """Append the file's ticks to ``ticks``.

    ``speed``: None for as fast as possible; else replay with the recorded inter-arrival times divided by ``speed``
    (1.0 is real time). ``rebase``: shift every time so the file starts now (a recording replayed as a live feed,
    so that orders placed meanwhile meet fresh reference prices). ``progress(rows_done, rows_total)`` is called
    after each append.
    """
    frame, layout = read(path, layout)
    layout = bar_layout(layout, frame, bar_interval)
    frame = frame.with_columns(pl.col("time") + pl.duration(microseconds=_us(layout.shift)))
    if rebase and frame.height:
        first = frame["time"].drop_nulls().min()
        if isinstance(first, datetime):
            frame = frame.with_columns(pl.col("time") + pl.duration(microseconds=_us(datetime.now(UTC) - first)))
    if instrument not in gateway.instruments:
        raise IngestFileError(
            f"unknown instrument {instrument}", hint=f"known: {', '.join(sorted(gateway.instruments))}"
        )
    report = Report(path, layout.name, rows=frame.height)
    source = f"file:{path.name}"[:64]
    first_line = 2 if layout.header and path.suffix.lower() == ".csv" else 1
    started = time.monotonic()
    done = 0
    async for chunk in _paced(ticks(frame, instrument, venue, first_line, report), speed, batch):
        good = [(line, t) for line, t in chunk if isinstance(t, Tick)]
        for _, t in chunk:
            if isinstance(t, Rejected):
                _reject(report, t, on_error)
        good = _validated(gateway, source, good, report, on_error)
        if good:
            stamp = Stamp(at=datetime.now(UTC), correlation_id=correlation_id or f"ingest-{path.name}")
            await gateway.ingest_ticks(IngestTicks(source=source, ticks=[t for _, t in good]), stamp)
            report.appended += len(good)
            first, last = good[0][1].exchange_ts, good[-1][1].exchange_ts
            report.first_event_time = report.first_event_time or first
            report.last_event_time = last
        done += len(chunk)
        if progress is not None:
            progress(done, report.rows)
    report.seconds = time.monotonic() - started
    return report


def _reject(report: Report, rejected: Rejected, on_error: str) -> None:
    report.rejected.append(rejected)
    if on_error == "stop":
        raise IngestFileError(
            f"{report.path}:{rejected.line}: {rejected.reason} (stopped; {report.appended} ticks appended before it)",
            hint="fix the row, or run with --on-error skip to go on without it",
        )


def _validated(
    gateway: CommandGateway, source: str, rows: list[tuple[int, Tick]], report: Report, on_error: str
) -> list[tuple[int, Tick]]:
    """The rows the API's own tick validation accepts; the others are rejected with its messages."""
    if not rows:
        return rows
    try:
        validate_ticks(IngestTicks(source=source, ticks=[t for _, t in rows]), gateway.instruments)
        return rows
    except CommandRejected as err:
        bad: dict[int, list[str]] = {}
        for violation in err.violations:
            match = _TICK_PATH.match(violation.field)
            if match is not None:
                bad.setdefault(int(match.group(1)), []).append(violation.message)
        for index in sorted(bad):
            _reject(report, Rejected(rows[index][0], "; ".join(bad[index])), on_error)
        return [row for index, row in enumerate(rows) if index not in bad]


async def _paced(
    rows: Iterator[tuple[int, Tick | Rejected]], speed: float | None, batch: int
) -> AsyncIterator[list[tuple[int, Tick | Rejected]]]:
    """Rows in chunks of at most ``batch``; with a ``speed``, each chunk when its first tick is due."""
    chunk: list[tuple[int, Tick | Rejected]] = []
    origin: tuple[float, datetime] | None = None
    for line, row in rows:
        if speed is not None and isinstance(row, Tick):
            if origin is None:
                origin = (time.monotonic(), row.exchange_ts)
            due = origin[0] + (row.exchange_ts - origin[1]).total_seconds() / speed
            wait = due - time.monotonic()
            if wait > 0.001:
                if chunk:
                    yield chunk
                    chunk = []
                await asyncio.sleep(wait)
        chunk.append((line, row))
        if len(chunk) >= batch:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def parse_speed(text: str) -> float | None:
    """``max`` -> None (as fast as possible); ``x10`` or ``10`` -> 10.0 times real time."""
    if text.lower() == "max":
        return None
    try:
        speed = float(text.lower().removeprefix("x"))
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise IngestFileError(f"--speed {text!r}: give max, or a factor like x1, x10, x0.5")
    return speed


def parse_columns(text: str, kind: Kind = "quotes") -> Layout:
    """``time=ts,bid=b,ask=a`` -> a layout; ``time`` is required, and at least one price."""
    mapping: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, column = part.partition("=")
        if name not in ("time", *PRICE_FIELDS) or not column:
            raise IngestFileError(
                f"--columns: {part!r} is not FIELD=COLUMN with FIELD one of time, {', '.join(PRICE_FIELDS)}"
            )
        mapping[name] = column
    if "time" not in mapping or not {"bid", "ask", "last"} & set(mapping):
        raise IngestFileError("--columns needs time=COLUMN and at least one of bid, ask, last")
    time_column = mapping.pop("time")
    return Layout("--columns", kind, time_column, mapping)
