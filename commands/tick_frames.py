"""Ticks as columns: ``validate_ticks`` and ``decide.ingest_ticks`` for a whole frame at once.

A tick frame has the columns of ``TICKS`` (a ``Tick`` per row). The rules run as column expressions that screen every
row together; only the few rows they flag go through ``validate_ticks`` itself, one at a time, so every violation
(field, rule and wording) is the very one the per-tick path reports — the screen flags every row that breaks a rule
(and may flag a few more, which the per-tick check then clears). The events come out as the batch codec's columns
(``schemas.batch``), equal field for field to what ``decide.ingest_ticks`` builds for the same ticks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from commands.decide import Stamp
from commands.errors import CommandRejected, Violation
from commands.models import IngestTicks, Tick
from commands.validation import EPOCH, validate_ticks
from domain.derive import ID_NAMESPACE
from domain.instruments import Instrument
from schemas.batch.columns import uuid5
from schemas.events import TickIngested

PRICES = ("bid", "ask", "last")
SIZES = ("bid_size", "ask_size", "last_size")
DECIMAL = pl.Decimal(18, 8)  # the events' decimal(18, 8)
_UNIT = 10**8
# A decimal every path reads the same and decimal(18, 8) holds exactly: at most 10 digits before the point, 8 after.
PLAIN_DECIMAL = r"^[0-9]{1,10}(\.[0-9]{1,8})?$"
TICKS = pl.Schema(
    {
        "instrument": pl.String(),
        "venue": pl.String(),
        **{name: DECIMAL for name in (*PRICES, *SIZES)},
        "exchange_ts": pl.Datetime("us", "UTC"),
    }
)

TickAt = Callable[[int], Tick]
"""The tick of row i as the per-tick path sees it (its values as given), for wording a violation."""


def tick_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s tick columns in ``TICKS`` order and types; a column it lacks is all null."""
    return frame.select(
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in TICKS.items()
    )


def plain_decimal(text: pl.Expr, *, positive: bool) -> pl.Expr:
    """Whether each value of a text column is absent or a plain decimal (above 0 with ``positive``, as prices are)."""
    plain = text.str.contains(PLAIN_DECIMAL)
    if positive:
        plain &= text.cast(DECIMAL, strict=False) > 0
    return text.is_null() | plain.fill_null(False)


def suspects(
    ticks: pl.DataFrame,
    instruments: Mapping[str, Instrument],
    *,
    now: datetime | None = None,
    max_ahead: timedelta = timedelta(seconds=5),
) -> list[int]:
    """Rows that may break a rule of ``validate_ticks`` (every row that does, and perhaps a few more)."""
    if not ticks.height:
        return []
    # Tick size in units of 1e-8 for the instruments a tick may name; unknown, untradable, or a tick size finer than
    # the events' 8 places: no entry, so the row is checked one by one.
    tick_units = {
        symbol: int(i.tick_size * _UNIT)
        for symbol, i in instruments.items()
        if i.tradable and i.tick_size > 0 and (i.tick_size * _UNIT) % 1 == 0
    }
    units = pl.col("instrument").replace_strict(tick_units, default=None, return_dtype=pl.Int64)
    at = pl.col("exchange_ts")
    broken = [
        units.is_null(),
        pl.all_horizontal(pl.col(p).is_null() for p in PRICES),
        pl.col("bid") > pl.col("ask"),
        at.is_null() | (at < EPOCH),
        *((pl.col(p).to_physical() % units) != 0 for p in PRICES),
    ]
    if now is not None:
        broken.append(at > pl.lit(now + max_ahead, pl.Datetime("us", "UTC")))
    flagged = ticks.select(pl.any_horizontal(rule.fill_null(False) for rule in broken).alias("flag"))
    return flagged.with_row_index().filter(pl.col("flag")).get_column("index").to_list()


def violations(
    ticks: pl.DataFrame,
    instruments: Mapping[str, Instrument],
    tick_at: TickAt,
    *,
    now: datetime | None = None,
    max_ahead: timedelta = timedelta(seconds=5),
) -> dict[int, list[Violation]]:
    """Row -> the rules it breaks, fields named ``ticks[row]...`` as ``validate_ticks`` names them for the batch."""
    found: dict[int, list[Violation]] = {}
    for row in suspects(ticks, instruments, now=now, max_ahead=max_ahead):
        one = IngestTicks.model_construct(source="api", ticks=[tick_at(row)])
        try:
            validate_ticks(one, instruments, now=now, max_ahead=max_ahead)
        except CommandRejected as err:
            prefix = f"ticks[{row}]"
            found[row] = [replace(v, field=prefix + v.field.removeprefix("ticks[0]")) for v in err.violations]
    return found


def validate(
    ticks: pl.DataFrame,
    instruments: Mapping[str, Instrument],
    tick_at: TickAt,
    *,
    now: datetime | None = None,
    max_ahead: timedelta = timedelta(seconds=5),
) -> None:
    """``validate_ticks`` for a frame: CommandRejected listing every broken rule, in row order."""
    found = violations(ticks, instruments, tick_at, now=now, max_ahead=max_ahead)
    if found:
        raise CommandRejected([v for row in sorted(found) for v in found[row]])


def counts(ticks: pl.DataFrame) -> dict[str, int]:
    """Ticks per instrument: how many sequence numbers each claims."""
    return dict(ticks.group_by("instrument").len().iter_rows())


def events(
    ticks: pl.DataFrame,
    instruments: Mapping[str, Instrument],
    first_sequence: Mapping[str, int],
    stamp: Stamp,
    source: str,
) -> pl.DataFrame:
    """The TickIngested events of validated ``ticks`` as the batch codec's columns, numbered per instrument from
    ``first_sequence`` in row order; ids, times and venues as ``decide.ingest_ticks`` gives them."""
    venues = {symbol: i.venue for symbol, i in instruments.items()}
    numbered = ticks.with_columns(
        (
            pl.col("instrument").replace_strict(dict(first_sequence), return_dtype=pl.Int64)
            + pl.int_range(pl.len(), dtype=pl.Int64).over("instrument")
        ).alias("sequence"),
        pl.col("venue").fill_null(pl.col("instrument").replace_strict(venues, default=None, return_dtype=pl.String)),
    )
    envelope = pl.struct(
        event_id=pl.lit(event_ids(numbered.get_column("instrument"), numbered.get_column("sequence"))),
        event_type=pl.lit(TickIngested.__name__),
        occurred_at=pl.col("exchange_ts"),
        recorded_at=pl.lit(stamp.at, pl.Datetime("us", "UTC")),
        correlation_id=pl.lit(stamp.correlation_id),
        causation_id=pl.lit(stamp.causation_id, pl.String()),
        aggregate_id=pl.col("instrument"),
        sequence=pl.col("sequence"),
        schema_version=pl.lit(TickIngested.schema_version(), pl.Int32()),
    )
    return numbered.select(envelope.alias("envelope"), *TICKS.names(), source=pl.lit(source))


def event_ids(aggregates: pl.Series, sequences: pl.Series) -> pl.Series:
    """``domain.derive.event_id_for(TickIngested, aggregate, sequence)`` for every row, as uuid strings."""
    return uuid5(ID_NAMESPACE, f"{TickIngested.route().topic}/" + aggregates + "/" + sequences.cast(pl.String))
