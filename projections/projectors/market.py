"""Read models of market data and of what it is worth: candles, signals_latest, positions and pnl."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from domain.positions.position import Position, mark_to_market
from projections import tables
from projections.projectors.base import FoldProjector, Frames, Projector, Record, Row, Writer, records
from schemas.batch import INDEX

PRICE = pl.Decimal(38, 8)

TIMEFRAMES: dict[str, timedelta] = {
    "1s": timedelta(seconds=1),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
}


def price_column(ticks: pl.DataFrame) -> pl.Expr:
    """The price a tick says an instrument trades at: its last trade, else the mid of its quote (exact: one more
    decimal place at most), else null."""
    exact = pl.Decimal(38, 9)
    mid = (pl.col("bid").cast(exact) + pl.col("ask").cast(exact)) / 2
    return pl.when(pl.col("last").is_not_null()).then(pl.col("last").cast(exact)).otherwise(mid)


class CandlesProjector(Projector):
    """OHLCV per instrument and timeframe, by event time; an instrument's ticks are in one partition: log order.

    A batch's ticks are aggregated per candle as columns (first, max, min, last, sum, count); only the candles the
    batch touches are then merged, one by one, with their rows so far — what folding tick by tick would give.
    """

    name = "candles"
    topics = ("ticks",)
    events = frozenset({"TickIngested"})
    tables = (tables.candles,)

    def project(self, frames: Frames, writer: Writer) -> None:
        ticks = frames.get("TickIngested")
        if ticks is None:
            return
        traded = pl.col("last").is_not_null() & pl.col("last_size").is_not_null()
        priced = (
            ticks.sort(INDEX)
            .select(
                pl.col("instrument"),
                price_column(ticks).alias("price"),
                pl.when(traded)
                .then(pl.col("last_size").cast(PRICE))
                .otherwise(pl.lit(Decimal(0), PRICE))
                .alias("volume"),
                pl.col("envelope").struct.field("occurred_at").dt.epoch("us").alias("at"),
            )
            .filter(pl.col("price").is_not_null())
        )
        if priced.is_empty():
            return
        spans = [
            priced.with_columns(
                pl.lit(name).alias("timeframe"),
                (pl.col("at") - pl.col("at") % (span // timedelta(microseconds=1))).alias("bucket"),
            )
            for name, span in TIMEFRAMES.items()
        ]
        found = (
            pl.concat(spans)
            .group_by("instrument", "timeframe", "bucket", maintain_order=True)
            .agg(
                pl.col("price").first().alias("open"),
                pl.col("price").max().alias("high"),
                pl.col("price").min().alias("low"),
                pl.col("price").last().alias("close"),
                pl.col("volume").sum().alias("volume"),
                pl.len().alias("ticks"),
            )
            .with_columns(pl.col("bucket").cast(pl.Datetime("us", "UTC")).alias("bucket_start"))
            .drop("bucket")
        )
        batch = found.to_dicts()
        before = writer.load(tables.candles, [(c["instrument"], c["timeframe"], c["bucket_start"]) for c in batch])
        rows = []
        for candle in batch:
            row = before.get((candle["instrument"], candle["timeframe"], candle["bucket_start"]))
            if row is not None:
                candle["open"] = row["open"]
                candle["high"] = max(row["high"], candle["high"])
                candle["low"] = min(row["low"], candle["low"])
                candle["volume"] += row["volume"]
                candle["ticks"] += row["ticks"]
            rows.append(candle)
        writer.upsert(tables.candles, rows)


class SignalsLatestProjector(FoldProjector):
    """The latest signal of each indicator on each instrument."""

    name = "signals_latest"
    topics = ("signals",)
    events = frozenset({"SignalGenerated"})
    tables = (tables.signals_latest,)

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        return ((record.event["instrument"], record.event["indicator"]),)

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        event = record.event
        return {
            "instrument": event["instrument"],
            "indicator": event["indicator"],
            "direction": event["direction"],
            "strength": event["strength"],
            "indicator_values": dict(event["values"]),
            "occurred_at": event["envelope"]["occurred_at"],
        }


class PositionsProjector(FoldProjector):
    """Each account's position per instrument as the positions processor last published it."""

    name = "positions"
    topics = ("positions",)
    events = frozenset({"PositionChanged"})
    tables = (tables.positions,)

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        return ((record.event["account_id"], record.event["instrument"]),)

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        event = record.event
        return {
            "account_id": event["account_id"],
            "instrument": event["instrument"],
            "quantity": event["quantity"],
            "average_price": event["average_price"],
            "realized_pnl": event["realized_pnl"],
            "fees_paid": event["fees_paid"],
            "cost_method": event["cost_method"],
            "last_fill_id": event["fill_id"],
            "updated_at": event["envelope"]["occurred_at"],
        }


class PnlProjector(Projector):
    """Realized PnL from the positions processor and unrealized PnL marked at each instrument's latest tick.

    The latest position (log order per account) and the latest mark (log order per instrument) are each final
    whatever the interleaving of the two topics, so the row they make is too.
    """

    name = "pnl"
    topics = ("positions", "ticks")
    events = frozenset({"PositionChanged", "TickIngested"})
    tables = (tables.pnl, tables.marks)

    def project(self, frames: Frames, writer: Writer) -> None:
        latest_marks: dict[str, Row] = {}
        latest_positions: dict[tuple[str, str], Mapping[str, Any]] = {}
        ticks = frames.get("TickIngested")
        if ticks is not None:  # each instrument's last priced tick of the batch, found as columns
            last_ticks = (
                ticks.sort(INDEX)
                .select(
                    pl.col("instrument"),
                    price_column(ticks).alias("price"),
                    pl.col("envelope").struct.field("occurred_at").alias("marked_at"),
                )
                .filter(pl.col("price").is_not_null())
                .group_by("instrument", maintain_order=True)
                .last()
            )
            latest_marks = {mark["instrument"]: mark for mark in last_ticks.to_dicts()}
        for record in records({k: v for k, v in frames.items() if k == "PositionChanged"}):
            latest_positions[(record.event["account_id"], record.event["instrument"])] = record.event
        if not latest_marks and not latest_positions:
            return
        writer.upsert(tables.marks, list(latest_marks.values()))
        instruments = set(latest_marks) | {instrument for _, instrument in latest_positions}
        marks = writer.load(tables.marks, [(i,) for i in instruments])
        rows = writer.load_where(tables.pnl, "instrument", sorted(latest_marks))
        rows.update(writer.load(tables.pnl, latest_positions))
        for key, changed in latest_positions.items():
            rows[key] = {
                "account_id": changed["account_id"],
                "instrument": changed["instrument"],
                "quantity": changed["quantity"],
                "average_price": changed["average_price"],
                "realized_pnl": changed["realized_pnl"],
                "fees_paid": changed["fees_paid"],
            }
        out = []
        for (account_id, instrument), row in rows.items():
            mark = marks.get((instrument,))
            position = Position(
                account_id=account_id,
                instrument=instrument,
                quantity=row["quantity"],
                average_price=row["average_price"],
                cost_basis=row["quantity"] * row["average_price"],
            )
            unrealized = Decimal(0) if mark is None else mark_to_market(position, mark["price"])
            out.append(
                {
                    **row,
                    "mark_price": None if mark is None else mark["price"],
                    "marked_at": None if mark is None else mark["marked_at"],
                    "unrealized_pnl": unrealized,
                    "total_pnl": row["realized_pnl"] + unrealized,
                }
            )
        writer.upsert(tables.pnl, out)
