"""The read models folded straight from the log, independently of projections/: each event read with a plain
AvroDeserializer (tests.support.independent), each model computed the simplest way — sort, then fold in order."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from tests.support.independent import IndependentReader

Row = dict[str, Any]
TOPICS = ("orders", "orders.checked", "executions", "ticks", "signals", "positions")
STAGE = {"orders": 0, "orders.checked": 1, "executions": 2}
EIGHT = Decimal("0.00000001")


class Log:
    """Every record of a namespace's topics: (topic, partition, offset, value)."""

    def __init__(self, reader: IndependentReader, prefix: str, partitions: int = 6) -> None:
        self.records = [
            (topic, p, offset, value)
            for topic in TOPICS
            for p in range(partitions)
            for offset, _key, value in reader.partition(prefix + topic, p)
        ]

    def of(self, *types: str) -> list[tuple[str, int, int, dict[str, Any]]]:
        return [r for r in self.records if r[3]["envelope"]["event_type"] in types]

    def needed(self) -> dict[tuple[str, int], int]:
        """Per partition, one past its last record: where a caught-up checkpoint is at least."""
        found: dict[tuple[str, int], int] = {}
        for topic, p, offset, _ in self.records:
            found[(topic, p)] = max(found.get((topic, p), 0), offset + 1)
        return found


ORDER_EVENTS = [
    "OrderPlaced",
    "CancelRequested",
    "AmendRequested",
    "OrderAccepted",
    "OrderRejected",
    "CancelAccepted",
    "AmendAccepted",
    "AmendRejected",
    "OrderFilled",
    "OrderCancelled",
    "CancelRejected",
    "OrderExpired",
    "OrderAmended",
    "OrderAmendRejected",
]


def orders(log: Log) -> dict[tuple[Any, ...], Row]:
    # Causal order: the request, then risk's decision, then the venue; each topic in its log order.
    trail = sorted(log.of(*ORDER_EVENTS), key=lambda r: (STAGE[r[0]], r[1], r[2]))
    out: dict[tuple[Any, ...], Row] = {}
    for _topic, _p, _o, e in trail:
        kind, at = e["envelope"]["event_type"], e["envelope"]["occurred_at"]
        row = out.setdefault(
            (e["order_id"],),
            {"order_id": e["order_id"], "account_id": e["account_id"], "instrument": e["instrument"]}
            | dict.fromkeys(("client_order_id", "side", "order_type", "time_in_force", "quantity", "limit_price"))
            | {"status": "PENDING", "filled_quantity": Decimal(0), "leaves_quantity": None, "reason_code": None}
            | {"reason": None, "placed_at": None, "amended_at": None, "events": 0},
        )
        row["events"] += 1
        row["updated_at"] = max(row.get("updated_at", at), at)
        if kind in ("OrderPlaced", "OrderAccepted"):
            for field in ("client_order_id", "side", "order_type", "time_in_force"):
                row[field] = e[field]
            if row["amended_at"] is None:
                row["quantity"], row["limit_price"] = e["quantity"], e["limit_price"]
            if row["leaves_quantity"] is None:
                row["leaves_quantity"] = e["quantity"]
            if kind == "OrderPlaced":
                row["placed_at"] = row["placed_at"] or at  # appended again (a retried append): placed the first time
            elif row["status"] == "PENDING":
                row["status"] = "ACCEPTED"
        elif kind == "OrderRejected":
            row["status"], row["reason_code"], row["reason"] = "REJECTED", e["reason_code"], e["reason"]
        elif kind == "OrderFilled":
            row["filled_quantity"], row["leaves_quantity"] = e["cumulative_quantity"], e["leaves_quantity"]
            row["status"] = "FILLED" if e["leaves_quantity"] == 0 else "PARTIALLY_FILLED"
        elif kind in ("OrderCancelled", "OrderExpired"):
            row["status"] = "CANCELLED" if kind == "OrderCancelled" else "EXPIRED"
            row["leaves_quantity"], row["reason"] = Decimal(0), e["reason"]
        elif kind == "OrderAmended":
            row["quantity"], row["limit_price"] = e["quantity"], e["limit_price"]
            row["leaves_quantity"], row["amended_at"] = e["leaves_quantity"], at
    return out


def order_events(log: Log) -> dict[tuple[Any, ...], Row]:
    return {
        (t, p, o): {
            "order_id": e["order_id"],
            "event_id": str(e["envelope"]["event_id"]),
            "event_type": e["envelope"]["event_type"],
            "correlation_id": e["envelope"]["correlation_id"],
            "causation_id": e["envelope"]["causation_id"],
        }
        for t, p, o, e in log.of(*ORDER_EVENTS)
    }


def fills(log: Log) -> dict[tuple[Any, ...], Row]:
    return {
        (t, p, o): {"fill_id": e["fill_id"], "price": e["fill_price"], "quantity": e["fill_quantity"], "fee": e["fee"]}
        for t, p, o, e in log.of("OrderFilled")
    }


def positions(log: Log) -> dict[tuple[Any, ...], Row]:
    out = {}
    for _t, _p, _o, e in sorted(log.of("PositionChanged"), key=lambda r: (r[1], r[2])):
        out[(e["account_id"], e["instrument"])] = {
            k: e[k] for k in ("quantity", "average_price", "realized_pnl", "fees_paid")
        } | {"last_fill_id": e["fill_id"]}
    return out


def _price(tick: dict[str, Any]) -> Decimal | None:
    if tick["last"] is not None:
        return Decimal(tick["last"])
    if tick["bid"] is not None and tick["ask"] is not None:
        return (tick["bid"] + tick["ask"]) / 2
    return None


def pnl(log: Log) -> dict[tuple[Any, ...], Row]:
    marks: dict[str, Decimal] = {}
    for _t, _p, _o, e in sorted(log.of("TickIngested"), key=lambda r: (r[1], r[2])):
        if (price := _price(e)) is not None:
            marks[e["instrument"]] = price
    out = {}
    for key, position in positions(log).items():
        mark = marks.get(key[1])
        unrealized = (
            Decimal(0)
            if mark is None
            else (position["quantity"] * mark - position["quantity"] * position["average_price"]).quantize(
                EIGHT, ROUND_HALF_EVEN
            )
        )
        out[key] = {
            "quantity": position["quantity"],
            "realized_pnl": position["realized_pnl"],
            "mark_price": mark,
            "unrealized_pnl": unrealized,
            "total_pnl": position["realized_pnl"] + unrealized,
        }
    return out


SPANS = {"1s": 1, "1m": 60, "5m": 300, "1h": 3600}


def candles(log: Log) -> dict[tuple[Any, ...], Row]:
    out: dict[tuple[Any, ...], Row] = {}
    for _t, _p, _o, e in sorted(log.of("TickIngested"), key=lambda r: (r[1], r[2])):
        price = _price(e)
        if price is None:
            continue
        at: datetime = e["envelope"]["occurred_at"]
        micros = int((at - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
        volume = e["last_size"] if e["last"] is not None and e["last_size"] is not None else Decimal(0)
        for name, seconds in SPANS.items():
            start = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros - micros % (seconds * 10**6))
            key = (e["instrument"], name, start)
            if key not in out:
                out[key] = {"open": price, "high": price, "low": price, "close": price, "volume": volume, "ticks": 1}
            else:
                c = out[key]
                c.update(high=max(c["high"], price), low=min(c["low"], price), close=price)
                c.update(volume=c["volume"] + volume, ticks=c["ticks"] + 1)
    return out


def signals_latest(log: Log) -> dict[tuple[Any, ...], Row]:
    out = {}
    for _t, _p, _o, e in sorted(log.of("SignalGenerated"), key=lambda r: (r[1], r[2])):
        out[(e["instrument"], e["indicator"])] = {"direction": e["direction"], "strength": e["strength"]}
    return out


def risk_limits(log: Log) -> dict[tuple[Any, ...], Row]:
    out: dict[tuple[Any, ...], Row] = defaultdict(lambda: {"kill_switch_engaged": False})
    for _t, _p, _o, e in sorted(log.of("RiskLimitsSet", "KillSwitchToggled"), key=lambda r: (r[1], r[2])):
        row = out[(e["account_id"],)]
        if e["envelope"]["event_type"] == "RiskLimitsSet":
            row.update(max_order_quantity=e["max_order_quantity"], daily_loss_limit=e["daily_loss_limit"])
        else:
            row.update(kill_switch_engaged=e["engaged"], kill_switch_reason=e["reason"])
    return dict(out)


def risk_rejections(log: Log) -> dict[tuple[Any, ...], Row]:
    return {
        (t, p, o): {"order_id": e["order_id"], "reason_code": e["reason_code"]}
        for t, p, o, e in log.of("OrderRejected", "AmendRejected")
    }


FOLDS = {
    "orders": orders,
    "order_events": order_events,
    "fills": fills,
    "positions": positions,
    "pnl": pnl,
    "candles": candles,
    "signals_latest": signals_latest,
    "risk_limits": risk_limits,
    "risk_rejections": risk_rejections,
}
