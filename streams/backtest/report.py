"""A backtest's report from what the processors recorded: its fills and the quotes it traded against.

Money is counted in the instrument's quote currency from a flat start. Cash moves by each fill's notional and fee;
equity at any moment is cash plus the position marked at the mid (the last price when a tick has no quote). All
money columns are exact decimals.

* **PnL**: final equity; **realized** / **fees** from the positions processor's events (average cost method).
* **Sharpe**: mean over standard deviation of the equity's 1-minute changes, times sqrt(525,600) — annualised,
  risk-free rate 0; there is no capital base, so it is a Sharpe of PnL changes.
* **Max drawdown**: the largest fall of equity from a running peak, in the quote currency.
* **Win rate**: the share of position-reducing fills whose realized PnL was positive.
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from pathlib import Path

import polars as pl

from schemas.events import OrderAccepted, OrderFilled, OrderRejected, PositionChanged, Side, TickIngested

MONEY = pl.Decimal(38, 8)
MINUTES_PER_YEAR = 525_600


@dataclass(frozen=True)
class Summary:
    instrument: str
    account: str
    ticks: int
    orders: int
    rejected: dict[str, int]  # risk's rejections by reason code
    expired: int  # orders (or their rest) that ended unfilled at the venue: IOC/FOK/market without liquidity
    fills: int
    traded_quantity: Decimal
    pnl: Decimal
    realized_pnl: Decimal
    fees: Decimal
    final_position: Decimal
    sharpe: float | None
    max_drawdown: Decimal
    win_rate: float | None


@dataclass(frozen=True)
class Report:
    summary: Summary
    fills: pl.DataFrame
    equity: pl.DataFrame

    def write(self, directory: Path) -> dict[str, Path]:
        """``fills.parquet``, ``equity.parquet``, ``summary.parquet`` and ``report.html`` in ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {name: directory / f"{name}.parquet" for name in ("fills", "equity", "summary")}
        self.fills.write_parquet(paths["fills"])
        self.equity.write_parquet(paths["equity"])
        pl.DataFrame([_row(self.summary)]).write_parquet(paths["summary"])
        paths["html"] = directory / "report.html"
        paths["html"].write_text(page(self))
        return paths


def fills_frame(fills: list[OrderFilled]) -> pl.DataFrame:
    signed = [f.fill_quantity if f.side is Side.BUY else -f.fill_quantity for f in fills]
    return pl.DataFrame(
        {
            "time": [f.envelope.occurred_at for f in fills],
            "order_id": [f.order_id for f in fills],
            "fill_id": [f.fill_id for f in fills],
            "side": [f.side.value for f in fills],
            "quantity": [f.fill_quantity for f in fills],
            "price": [f.fill_price for f in fills],
            "fee": [f.fee for f in fills],
            "liquidity": [f.liquidity.value for f in fills],
            "signed_quantity": signed,
        },
        schema_overrides={
            "quantity": MONEY,
            "price": MONEY,
            "fee": MONEY,
            "signed_quantity": MONEY,
            "time": pl.Datetime("us", "UTC"),
        },
    )


def marks_frame(ticks: list[TickIngested]) -> pl.DataFrame:
    marks = []
    for t in ticks:
        mark = (t.bid + t.ask) / 2 if t.bid is not None and t.ask is not None else t.last
        if mark is not None:
            marks.append((t.envelope.occurred_at, mark))
    return pl.DataFrame(marks, schema={"time": pl.Datetime("us", "UTC"), "mark": MONEY}, orient="row")


def build(
    instrument: str,
    account: str,
    fills: list[OrderFilled],
    positions: list[PositionChanged],
    ticks: list[TickIngested],
    decisions: Sequence[OrderAccepted | OrderRejected] = (),
    expired: int = 0,
) -> Report:
    frame = fills_frame(fills).sort("time", maintain_order=True)
    cash_flow = -(pl.col("signed_quantity") * pl.col("price")) - pl.col("fee")
    book = frame.with_columns(
        pl.col("signed_quantity").cum_sum().alias("position"), cash_flow.cum_sum().alias("cash")
    ).select("time", "position", "cash")
    marks = marks_frame(ticks).sort("time")
    equity = (
        marks.join_asof(book, on="time", strategy="backward")
        .with_columns(pl.col("position").fill_null(Decimal(0)), pl.col("cash").fill_null(Decimal(0)))
        .with_columns((pl.col("cash") + pl.col("position") * pl.col("mark")).cast(MONEY).alias("equity"))
    )
    final = _decimal(equity["equity"][-1]) if equity.height else Decimal(0)
    drawdown = _decimal((equity["equity"].cum_max() - equity["equity"]).max()) if equity.height else Decimal(0)
    last = positions[-1] if positions else None
    realized_steps = _realized_steps(positions)
    summary = Summary(
        instrument=instrument,
        account=account,
        ticks=len(ticks),
        orders=len(decisions),
        rejected=dict(Counter(d.reason_code for d in decisions if isinstance(d, OrderRejected))),
        expired=expired,
        fills=frame.height,
        traded_quantity=_decimal(frame["quantity"].sum()),
        pnl=final,
        realized_pnl=last.realized_pnl if last else Decimal(0),
        fees=last.fees_paid if last else Decimal(0),
        final_position=last.quantity if last else Decimal(0),
        sharpe=_sharpe(equity),
        max_drawdown=drawdown,
        win_rate=(sum(step > 0 for step in realized_steps) / len(realized_steps)) if realized_steps else None,
    )
    return Report(summary, frame.drop("signed_quantity"), equity)


def _decimal(value: object) -> Decimal:
    """A polars scalar of a Decimal column (None when empty) as a Decimal."""
    if value is None:
        return Decimal(0)
    assert isinstance(value, Decimal | int), value
    return Decimal(value)


def _realized_steps(positions: list[PositionChanged]) -> list[Decimal]:
    """The realized PnL each position-reducing fill added."""
    steps, before = [], Decimal(0)
    for p in positions:
        if p.realized_pnl != before:
            steps.append(p.realized_pnl - before)
        before = p.realized_pnl
    return steps


def _sharpe(equity: pl.DataFrame) -> float | None:
    if equity.height < 3:
        return None
    minutes = (
        equity.select("time", pl.col("equity").cast(pl.Float64))
        .group_by_dynamic("time", every="1m")
        .agg(pl.col("equity").last())
        .with_columns(pl.col("equity").diff().alias("change"))
        .drop_nulls("change")
    )
    if minutes.height < 2:
        return None
    mean, std = minutes["change"].mean(), minutes["change"].std()
    if not isinstance(mean, float) or not isinstance(std, float) or std == 0 or math.isnan(std):
        return None
    return mean / std * math.sqrt(MINUTES_PER_YEAR)


def _row(summary: Summary) -> dict[str, object]:
    return {k: (str(v) if isinstance(v, Decimal | dict) else v) for k, v in asdict(summary).items()}


def page(report: Report) -> str:
    """A self-contained HTML page: the summary and the equity curve as an inline SVG chart."""
    rows = "".join(
        f"<tr><th>{html.escape(k.replace('_', ' '))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in _row(report.summary).items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>tradecore backtest</title>"
        "<style>body{font:14px system-ui;margin:2em}th{text-align:left;padding-right:1em}</style></head><body>"
        f"<h1>Backtest {html.escape(report.summary.instrument)} — {html.escape(report.summary.account)}</h1>"
        f"<table>{rows}</table><h2>Equity ({html.escape(report.summary.instrument)} quote currency)</h2>"
        f"{_svg(report.equity)}</body></html>"
    )


def _svg(equity: pl.DataFrame, width: int = 900, height: int = 300) -> str:
    if equity.height < 2:
        return "<p>no equity curve: fewer than two marks</p>"
    t = equity["time"].dt.epoch("us").to_list()
    e = equity["equity"].cast(pl.Float64).to_list()
    t0, t1, lo, hi = t[0], t[-1], min(e), max(e)
    span_t, span_e = (t1 - t0) or 1, (hi - lo) or 1.0
    points = " ".join(
        f"{(ti - t0) / span_t * width:.1f},{height - (ei - lo) / span_e * height:.1f}"
        for ti, ei in zip(t, e, strict=True)
    )
    return (
        f"<svg width='{width}' height='{height + 20}' viewBox='0 -10 {width} {height + 20}' "
        "xmlns='http://www.w3.org/2000/svg' role='img' aria-label='equity curve'>"
        f"<polyline fill='none' stroke='#1565c0' stroke-width='1.5' points='{points}'/>"
        f"<text x='0' y='{height + 8}' font-size='11'>min {lo:,.2f}</text>"
        f"<text x='0' y='0' font-size='11'>max {hi:,.2f}</text></svg>"
    )
