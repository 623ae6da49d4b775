"""A recorded file's rows (time, and the tick fields as text, as ``files.read`` gives them) to a tick frame.

Plain decimals (``tick_frames.PLAIN_DECIMAL``: at most 10 digits before the point and 8 after, above 0 for prices)
are what nearly every row holds, and they are exact in the events' ``decimal(18, 8)``: those rows are cast as whole
columns.
Any other row (no time, an exponent, a sign, more than 8 places, text that is no number) goes through ``tick_of``,
the per-row rules: it becomes a ``Tick`` or a ``Rejected`` with the reason, exactly as before the columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import polars as pl
from pydantic import ValidationError

from commands import tick_frames
from commands.models import Tick

PRICE_FIELDS = ("bid", "ask", "last", "bid_size", "ask_size", "last_size")
SCALE = 8  # decimal places of prices and sizes in the events (decimal(18, 8))
_QUANTUM = Decimal(1).scaleb(-SCALE)
_ID = r"^[A-Za-z0-9._:\-]{1,64}$"  # commands.models.Id
LINE = "line"


@dataclass(frozen=True)
class Rejected:
    """A row that did not become a tick, and why."""

    line: int  # 1-based line of a CSV (header included), or 1-based row of a parquet file
    reason: str


@dataclass
class Converted:
    """A chunk of rows as ticks (``tick_frames.TICKS`` columns and the ``line`` of each) and the rows refused."""

    ticks: pl.DataFrame
    rejected: list[Rejected] = field(default_factory=list)
    rounded: int = 0  # values with more than 8 decimal places, rounded to 8


def convert(rows: pl.DataFrame, instrument: str, venue: str | None, first_line: int) -> Converted:
    """The ticks of ``rows`` (line ``first_line`` onwards), in row order, and the rows that are none, with why."""
    present = [name for name in PRICE_FIELDS if name in rows.columns]
    rows, rounded = _spelled_plain(rows.with_columns(pl.col(name).replace("", None) for name in present), present)
    text = {name: pl.col(name) for name in present}
    plain = [tick_frames.plain_decimal(t, positive=name in tick_frames.PRICES) for name, t in text.items()]
    ids_plain = pl.select(
        pl.lit(instrument).str.contains(_ID) & (pl.lit(venue, pl.String).str.contains(_ID) | (venue is None))
    ).item()
    fast = pl.all_horizontal(pl.col("time").is_not_null(), pl.lit(bool(ids_plain)), *plain)
    marked = rows.with_columns(fast.alias("_fast"), (pl.int_range(pl.len()) + first_line).alias(LINE))
    cast = marked.filter("_fast").select(
        instrument=pl.lit(instrument),
        venue=pl.lit(venue, pl.String),
        **{name: t.cast(tick_frames.DECIMAL) for name, t in text.items()},
        exchange_ts=pl.col("time"),
        line=pl.col(LINE),
    )
    converted = Converted(tick_frames.tick_frame(cast).with_columns(cast.get_column(LINE)))
    converted.rounded = int(rounded.filter(marked.get_column("_fast")).sum())
    slow: list[dict[str, Any]] = []
    originals = [column for column in marked.columns if column.startswith(_ORIGINAL)]
    for row in marked.filter(~pl.col("_fast")).iter_rows(named=True):
        for column in originals:  # the value as written, for the per-row rules and their messages
            row[column.removeprefix(_ORIGINAL)] = row.pop(column)
        tick = tick_of(row, row[LINE], instrument, venue, converted)
        if isinstance(tick, Rejected):
            converted.rejected.append(tick)
        else:
            slow.append({**tick.model_dump(), LINE: row[LINE]})
    if slow:
        rest = pl.DataFrame(slow, schema={**tick_frames.TICKS, LINE: pl.Int64})
        converted.ticks = pl.concat([converted.ticks, rest]).sort(LINE)
    return converted


_ORIGINAL = "_original_"


def _spelled_plain(rows: pl.DataFrame, present: list[str]) -> tuple[pl.DataFrame, pl.Series]:
    """Numbers written otherwise (``1e-05``, ``0.031035000000000004``: a float's repr) spelled as plain decimals,
    rounded to 8 places as ``tick_of`` rounds them; and per row, how many values were rounded. Only those values go
    through Python's ``Decimal``; a row whose value is still not plain goes through ``tick_of`` with its text as
    written (kept in ``_original_<field>``)."""
    rounded = pl.Series("rounded", [0] * rows.height, dtype=pl.Int64)
    for name in present:
        column = rows.get_column(name)
        if column.is_null().all() or column.str.contains(tick_frames.PLAIN_DECIMAL).fill_null(True).all():
            continue
        rows = rows.with_columns(column.alias(_ORIGINAL + name))
        # Digits past the 8th place (a float's noise): rounded half even as whole columns, digits kept as text.
        long = column.str.contains(_LONG).fill_null(False)
        if long.any():
            at = long.arg_true()
            column = column.scatter(at, pl.select(_rounded_text(pl.lit(column.gather(at)))).to_series())
            rounded += long.cast(pl.Int64)
        odd = (column.is_not_null() & ~column.str.contains(tick_frames.PLAIN_DECIMAL)).arg_true()
        if len(odd):  # the rest (exponents, signs, words) one by one
            spelled, was_rounded = zip(*map(_plain_text, column.gather(odd).to_list()), strict=True)
            column = column.scatter(odd, list(spelled))
            rounded = rounded.scatter(odd, rounded.gather(odd) + pl.Series(was_rounded, dtype=pl.Int64))
        rows = rows.with_columns(column.alias(name))
    return rows, rounded


# Plain but for more than 8 places: rounded as columns (a result of 11 integer digits stays not plain: per row).
_LONG = r"^[0-9]{1,10}\.[0-9]{9,}$"


def _rounded_text(text: pl.Expr) -> pl.Expr:
    """Plain decimal text of more than 8 places rounded half even to 8, as ``Decimal.quantize`` rounds it."""
    whole, fraction = text.str.extract(r"^([0-9]+)\.", 1), text.str.extract(r"\.([0-9]+)$", 1)
    kept, cut = fraction.str.slice(0, 8), fraction.str.slice(8)
    first = cut.str.slice(0, 1)
    odd_last = kept.str.slice(7, 1).cast(pl.Int64) % 2 == 1
    up = (first > "5") | ((first == "5") & (cut.str.slice(1).str.contains("[1-9]") | odd_last))
    truncated = pl.concat_str(whole, pl.lit("."), kept).cast(pl.Decimal(19, 8))
    step = pl.lit(Decimal("0.00000001"), pl.Decimal(19, 8))
    return pl.when(up).then(truncated + step).otherwise(truncated).cast(pl.String)


def _plain_text(text: str) -> tuple[str | None, int]:
    """``text`` as a plain decimal of at most 8 places and whether it was rounded; (text, 0) when it is no finite
    number (``tick_of`` says why)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text, 0
    if not value.is_finite():
        return text, 0
    if -int(value.as_tuple().exponent) > SCALE:
        return format(value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN), "f"), 1
    return format(value, "f"), 0


def tick_of(row: dict[str, Any], line: int, instrument: str, venue: str | None, counts: Converted) -> Tick | Rejected:
    """One row as a Tick, or the reason it is not one (bad number, bad time, out of range).

    Digits past the events' 8 decimal places are rounded away (half even) and counted in ``counts.rounded``: in
    recorded files they are the noise of a float that went through arithmetic (``0.031035000000000004``).
    """
    when: datetime | None = row["time"]
    if when is None:
        return Rejected(line, f"time {row['raw_time']!r} is not a time this layout reads")
    values: dict[str, Decimal] = {}
    for name in PRICE_FIELDS:
        text = row.get(name)
        if text is None or text == "":
            continue
        try:
            value = Decimal(text)
        except InvalidOperation:
            return Rejected(line, f"{name} {text!r} is not a number")
        if not value.is_finite():
            return Rejected(line, f"{name} {text!r} is not a finite number")
        if -int(value.as_tuple().exponent) > SCALE:
            value = value.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
            counts.rounded += 1
        values[name] = value
    try:
        return Tick(instrument=instrument, venue=venue, exchange_ts=when.replace(tzinfo=UTC), **values)
    except ValidationError as err:
        reason = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return Rejected(line, reason)
