"""Read models of market data and of what it is worth: candles, signals_latest, positions and pnl."""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.positions.position import Position, mark_to_market
from projections import tables
from projections.projectors.base import FoldProjector, Frames, Projector, Record, Row, Writer, records

TIMEFRAMES: dict[str, timedelta] = {
    "1s": timedelta(seconds=1),
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "1h": timedelta(hours=1),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def tick_price(tick: Mapping[str, Any]) -> Decimal | None:
    """The price a tick (a TickIngested's fields) says an instrument trades at: its last trade, else the mid of its
    quote, else none."""
    last: Decimal | None = tick["last"]
    if last is not None:
        return last
    bid: Decimal | None = tick["bid"]
    ask: Decimal | None = tick["ask"]
    if bid is not None and ask is not None:
        return (bid + ask) / 2  # exact: one more decimal place at most
    return None


def bucket(at: datetime, timeframe: timedelta) -> datetime:
    """The start of the ``timeframe`` bucket holding event time ``at`` (buckets aligned on the Unix epoch)."""
    return at - (at - _EPOCH) % timeframe


class CandlesProjector(FoldProjector):
    """OHLCV per instrument and timeframe, by event time; an instrument's ticks are in one partition: log order."""

    name = "candles"
    topics = ("ticks",)
    events = frozenset({"TickIngested"})
    tables = (tables.candles,)

    def __init__(self) -> None:
        self._last: tuple[str, datetime, list[tuple[Hashable, ...]]] | None = None

    def keys(self, record: Record) -> Iterable[tuple[Hashable, ...]]:
        tick = record.event
        if tick_price(tick) is None:
            return ()
        instrument = tick["instrument"]
        second = bucket(tick["envelope"]["occurred_at"], TIMEFRAMES["1s"])
        # Ticks come in bursts: the next one is most often in the same second, so in the same four candles.
        if self._last is not None and self._last[0] == instrument and self._last[1] == second:
            return self._last[2]
        found: list[tuple[Hashable, ...]] = [
            (instrument, name, bucket(second, span)) for name, span in TIMEFRAMES.items()
        ]
        self._last = (instrument, second, found)
        return found

    def fold(self, row: Row | None, key: tuple[Hashable, ...], record: Record) -> Row:
        tick = record.event
        price = tick_price(tick)
        assert price is not None
        volume = tick["last_size"] if tick["last"] is not None and tick["last_size"] is not None else Decimal(0)
        if row is None:
            instrument, timeframe, start = key
            return {
                "instrument": instrument,
                "timeframe": timeframe,
                "bucket_start": start,
                "open": price,
                "high": price,
                "low": price,
                "close": price,
                "volume": volume,
                "ticks": 1,
            }
        # The row is the batch's own copy (loaded or made for it): change it in place.
        if price > row["high"]:
            row["high"] = price
        elif price < row["low"]:
            row["low"] = price
        row["close"] = price
        row["volume"] += volume
        row["ticks"] += 1
        return row


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
        for record in records(frames):
            event = record.event
            if record.type == "TickIngested":
                price = tick_price(event)
                if price is not None:
                    latest_marks[event["instrument"]] = {
                        "instrument": event["instrument"],
                        "price": price,
                        "marked_at": event["envelope"]["occurred_at"],
                    }
            else:
                latest_positions[(event["account_id"], event["instrument"])] = event
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
