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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import polars as pl

from commands import tick_frames
from commands.decide import Stamp
from commands.errors import Violation
from commands.gateway import CommandGateway
from commands.models import Tick
from commands.tick_frames import TickAt
from streams.errors import AppendFailed, StreamsError
from streams.ingest import rows
from streams.ingest.rows import PRICE_FIELDS, Converted, Rejected

Kind = Literal["quotes", "trades", "bars"]


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
            # The shortest text that reads back as the same float: the decimal the recorder wrote. polars writes the
            # digits repr writes (the same Decimal, digit for digit) at column speed; NaN and infinities as repr
            # spells them, for the reason a row is refused.
            value = (
                pl.when(value.is_nan())
                .then(pl.lit("nan"))
                .when(value.is_infinite())
                .then(pl.when(value > 0).then(pl.lit("inf")).otherwise(pl.lit("-inf")))
                .otherwise(value.cast(pl.Utf8))
            )
        columns.append(value.cast(pl.Utf8).alias(name))
    return frame.select(columns)


def _has_offsets(times: pl.Series) -> bool:
    sample = times.cast(pl.Utf8).drop_nulls().head(1)
    return bool(len(sample)) and bool(re.search(r"(Z|[+-]\d\d:?\d\d)$", sample[0]))


def _rebased(times: pl.Expr, first: datetime, now: datetime, speed: float | None) -> pl.Expr:
    """``times`` moved so that ``first`` is ``now``; with a ``speed``, their gaps divided by it. A recording replayed
    faster than it was recorded keeping its gaps would run ahead of the clock: at x4 it is a minute ahead after 20 s,
    where the API refuses it (``CommandGateway.tick_max_ahead``, 5 s)."""
    if speed is None:
        return times + pl.duration(microseconds=_us(now - first))
    since = ((times - first).dt.total_microseconds() / speed).round().cast(pl.Int64)
    return pl.lit(now) + pl.duration(microseconds=since)


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


def ticks(
    frame: pl.DataFrame, instrument: str, venue: str | None, first_line: int, report: Report
) -> list[tuple[int, Tick | Rejected]]:
    """Each row with its line, in row order: a Tick, or the reason it is not one — the rows `ingest` converts, as
    objects, for the in-process readers of a file (sweeps, training) that feed processors event by event."""
    converted = rows.convert(frame, instrument, venue, first_line)
    report.rounded += converted.rounded
    found: list[tuple[int, Tick | Rejected]] = [(r.line, r) for r in converted.rejected]
    for row in converted.ticks.iter_rows(named=True):
        line = row.pop(rows.LINE)
        found.append((line, Tick.model_validate(row)))
    return sorted(found, key=lambda pair: pair[0])


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
    batch: int = 25_000,  # bench/ingest.py: 10k-row chunks 111k ticks/s, 25k 132k, 50k 128k (Binance quotes)
    window: int = 100_000,  # docs/PERFORMANCE.md "Stop 33"
    bar_interval: timedelta | None = None,
    progress: Callable[[int, int], None] | None = None,
    correlation_id: str | None = None,
    rebase: bool = False,
    from_line: int | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Report:
    """Append the file's ticks to ``ticks``, ``batch`` rows at a time: each chunk becomes a tick frame, is validated,
    numbered and encoded as columns and produced. Up to ``window`` ticks go through one ``CommandGateway.tick_load``:
    their sequences commit together once Kafka has acknowledged them all, or failed to: a load Kafka did not confirm
    may be in the log in part, so its sequences are not used again, and the error names the line to go on from.

    ``speed``: None for as fast as possible; else replay with the recorded inter-arrival times divided by ``speed``
    (1.0 is real time). ``rebase``: shift every time so the file starts now (a recording replayed as a live feed,
    so that orders placed meanwhile meet fresh reference prices); with a ``speed``, the gaps between them are divided
    by it too, so each tick carries the time it is sent at, as a live feed's would. ``progress(rows_done,
    rows_total)`` is called after each chunk is handed to Kafka. ``from_line``: skip the rows before this line of the
    file (going on after a load that failed). ``clock``: what time it is (each batch's ``recorded_at``).
    """
    frame, layout = read(path, layout)
    layout = bar_layout(layout, frame, bar_interval)
    frame = frame.with_columns(pl.col("time") + pl.duration(microseconds=_us(layout.shift)))
    pace = speed
    if rebase and frame.height:
        first = frame["time"].drop_nulls().min()
        if isinstance(first, datetime):
            frame = frame.with_columns(_rebased(pl.col("time"), first, clock(), speed).alias("time"))
            pace = None if speed is None else 1.0  # the rebased times are those the rows are due at
    if instrument not in gateway.instruments:
        raise IngestFileError(
            f"unknown instrument {instrument}", hint=f"known: {', '.join(sorted(gateway.instruments))}"
        )
    source = f"file:{path.name}"[:64]
    first_line = 2 if layout.header and path.suffix.lower() == ".csv" else 1
    skipped = _skipped(path, frame.height, first_line, from_line)
    report = Report(path, layout.name, rows=frame.height - skipped)
    started = time.monotonic()

    def tick_at(lines: pl.Series) -> TickAt:
        """Row i of a tick frame as the per-row rules make it (its values as written), to word a violation."""

        def at(i: int) -> Tick:
            line = int(lines[i])
            tick = rows.tick_of(frame.row(line - first_line, named=True), line, instrument, venue, Converted(frame))
            assert isinstance(tick, Tick)  # the row became a tick once already
            return tick

        return at

    def prepared(start: int, stop: int) -> _Chunk:
        """Rows ``start:stop`` converted, and the API's rule violations of those that became ticks (pure: the
        report learns of them in row order, in ``_account``)."""
        chunk = rows.convert(frame.slice(start, stop - start), instrument, venue, first_line + start)
        lines = chunk.ticks.get_column(rows.LINE)
        return _Chunk(start, stop, chunk, tick_frames.violations(chunk.ticks, gateway.instruments, tick_at(lines)))

    async def following(paced: AsyncIterator[tuple[int, int]]) -> _Chunk | None:
        span = await anext(paced, None)
        return None if span is None else await asyncio.to_thread(prepared, *span)

    # The next chunk is read into ticks on a thread while the current one is numbered, and made and encoded on
    # another while the one before is produced (``EventLog.load``): the chunks of a load go to Kafka one after the
    # other, acknowledged together at its end. Paced, a load is one chunk: the instrument's sequences are not held
    # while rows wait for their time.
    per_load = batch if speed is not None else window
    paced = _paced(frame.get_column("time"), pace, batch, skipped)
    coming = asyncio.ensure_future(following(paced))
    try:
        current = await coming
        while current is not None:
            load_from = first_line + current.start
            async with _going_on(path, load_from), gateway.tick_load(source) as add:
                loaded = 0
                while current is not None and loaded < per_load:
                    coming = asyncio.ensure_future(following(paced))
                    good = _account(report, current, on_error)
                    if good.height:
                        stamp = Stamp(at=clock(), correlation_id=correlation_id or f"ingest-{path.name}")
                        lines = good.get_column(rows.LINE)
                        ticks = good.drop(rows.LINE)
                        await add(ticks, stamp, tick_at(lines))
                        report.appended += good.height
                        loaded += good.height
                        times = ticks.get_column("exchange_ts")
                        report.first_event_time = report.first_event_time or times[0]
                        report.last_event_time = times[-1]
                    if progress is not None:
                        progress(current.stop, report.rows)
                    current = await coming
    finally:
        coming.cancel()  # a row that stopped the run, or a failed append: the chunk read ahead is not wanted
    report.seconds = time.monotonic() - started
    return report


def _reject(report: Report, rejected: Rejected, on_error: str) -> None:
    report.rejected.append(rejected)
    if on_error == "stop":
        raise IngestFileError(
            f"{report.path}:{rejected.line}: {rejected.reason} (stopped; {report.appended} ticks appended before it)",
            hint="fix the row, or run with --on-error skip to go on without it",
        )


@dataclass
class _Chunk:
    """Rows ``start:stop`` as ticks, the rows that are none, and the rule violations of the ticks by their index."""

    start: int
    stop: int
    converted: Converted
    violations: dict[int, list[Violation]]


def _account(report: Report, chunk: _Chunk, on_error: str) -> pl.DataFrame:
    """The chunk's ticks the API's own validation accepts; every refused row reported with why, in row order."""
    report.rounded += chunk.converted.rounded
    for rejected in chunk.converted.rejected:
        _reject(report, rejected, on_error)
    ticks, bad = chunk.converted.ticks, chunk.violations
    lines = ticks.get_column(rows.LINE)
    for index in sorted(bad):
        _reject(report, Rejected(int(lines[index]), "; ".join(v.message for v in bad[index])), on_error)
    if not bad:
        return ticks
    return ticks.with_row_index("_row").filter(~pl.col("_row").is_in(list(bad))).drop("_row")


def _skipped(path: Path, rows: int, first_line: int, from_line: int | None) -> int:
    """How many rows ``from_line`` skips (none without it)."""
    if from_line is None:
        return 0
    if not first_line <= from_line < first_line + rows:
        raise IngestFileError(
            f"{path}: --from-line {from_line} is not a row of the file",
            hint=f"its rows are lines {first_line}-{first_line + rows - 1}",
        )
    return from_line - first_line


@asynccontextmanager
async def _going_on(path: Path, first_line: int) -> AsyncIterator[None]:
    """Around a load from ``first_line``: a failure to append it says where the file can be taken up again."""
    try:
        yield
    except AppendFailed as err:  # (anything else — a bad row, the registry gone — is said as it is)
        raise IngestFileError(
            f"{path}: Kafka did not confirm the ticks from line {first_line} on: {err}",
            hint=f"the lines before {first_line} are in the log; the ticks from it on may be in part (their sequences "
            f"are not used again, so a tick appended twice has two ids): go on with --from-line {first_line}",
        ) from err


async def _paced(times: pl.Series, speed: float | None, batch: int, skip: int) -> AsyncIterator[tuple[int, int]]:
    """Row ranges of at most ``batch`` rows from row ``skip``; with a ``speed``, each range when its first row is
    due."""
    if speed is None:
        for start in range(skip, len(times), batch):
            yield start, min(start + batch, len(times))
        return
    start = skip
    origin: tuple[float, datetime] | None = None
    for row, at in enumerate(times.to_list()[skip:], start=skip):
        if at is not None:
            if origin is None:
                origin = (time.monotonic(), at)
            wait = origin[0] + (at - origin[1]).total_seconds() / speed - time.monotonic()
            if wait > 0.001:
                if row > start:
                    yield start, row
                    start = row
                await asyncio.sleep(wait)
        if row + 1 - start >= batch:
            yield start, row + 1
            start = row + 1
    if start < len(times):
        yield start, len(times)


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
