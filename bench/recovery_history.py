"""The histories bench/recovery.py restarts processors over: days of trading on the real BTCUSDT quotes.

Risk's history is a trading session per day of event time (``tests.support.market_log.session``, moved to its day),
and the execution reports the simulated venue derives from risk's decisions on it, as the pipeline would have written
them to ``executions.by-account``; at the end of each day the desks cancel the limits still working, as desks do. So
orders finish, and what risk holds is what a live system's risk would hold: a day's orders, not the whole history's
unfilled ones (without the close-out, open orders grew with the history: 9,676 at 1M records, 17,752 at 2M). Signals'
history is the quotes replayed lap after lap, a minute of event time per lap, built as columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from commands import decide
from commands.decide import Stamp
from commands.models import CancelOrder
from commands.refs import OrderRef
from commands.tick_frames import events, tick_frame
from domain.instruments import InstrumentRegistry
from domain.risk import RiskEngine
from domain.venue.venue import VenueConfig
from domain.venue.venues import Venues
from schemas.events import Event, TickIngested
from streams.processors import ProcessorSettings
from tests.support.market_log import QUOTES, session

RECORDS_PER_DAY = 50_000
"""Input records per day of event time: the order memory (24 h) holds about this many, whatever the history."""
DAYS_PER_CYCLE = 20
"""Day d trades the session of seed d mod 20, and a history is whole days: histories of whole cycles (1M, 10M
records asked) end on the same two days, so what risk holds at their end — those days' order memory — is the same,
and a difference in memory between a short and a long history is the history's. Before, with a seed per day and the
last day cut to the records asked, risk remembered 9,890 orders at the end of 1M records and 22,295 at the end of
10M: two different, differently cut days, not growth."""


def _moved(event: Event, by: timedelta) -> Event:
    envelope = event.envelope
    moved = replace(envelope, occurred_at=envelope.occurred_at + by, recorded_at=envelope.recorded_at + by)
    if isinstance(event, TickIngested):
        return replace(event, envelope=moved, exchange_ts=event.exchange_ts + by)
    return replace(event, envelope=moved)


def risk_history(records: int) -> Iterator[tuple[str, str, Event]]:
    """(topic, key, event) in event-time order, executions to executions.by-account: whole days of trading,
    ``records`` / ``RECORDS_PER_DAY`` of them (rounded; a day writes about 52,000 records with its executions and
    close-out)."""
    settings = ProcessorSettings()
    instruments = InstrumentRegistry.from_file(settings.instruments_file)
    risk = RiskEngine(settings.default_limits(), instruments)
    venues = Venues(instruments, VenueConfig())

    def run(event: Event) -> Iterator[tuple[str, str, Event]]:
        yield event.route().topic, event.key, event
        decided = risk.handle(event)
        for trigger in [event] if isinstance(event, TickIngested) else decided:
            for execution in venues.handle(trigger):
                risk.handle(execution)
                yield "executions.by-account", getattr(execution, "account_id", ""), execution

    for day in range(max(1, round(records / RECORDS_PER_DAY))):
        # About 0.85 input records per order and cancel, the rest ticks and execution reports.
        for event in _day(session(int(RECORDS_PER_DAY * 0.55), seed=day % DAYS_PER_CYCLE), day, risk):
            yield from run(event)


def _day(events: list[Event], day: int, risk: RiskEngine) -> Iterator[Event]:
    """A session's events moved to ``day``, then its close-out: drawn lazily, so the cancels are of the orders risk
    holds working once it has taken the whole day."""
    last = None
    for event in events:
        last = _moved(event, timedelta(days=day))
        yield last
    if last is not None:
        yield from _close_out(risk, last.envelope.occurred_at, day)


def _close_out(risk: RiskEngine, after: datetime, day: int) -> list[Event]:
    """A cancel for every order risk holds working, a microsecond apart after ``after``: the day's close-out."""
    working = [
        OrderRef(order.order_id, account.account_id, order.instrument, order.order_type)
        for account in risk.accounts.values()
        for order in account.open_orders.values()
    ]
    return [
        # The session places and cancels only: an order still working has had its placement, so this is its second.
        decide.request_cancel(
            CancelOrder(reason="end of day"),
            order,
            2,
            Stamp(after + timedelta(microseconds=k + 1), f"close-{day}-{order.order_id}"),
        )
        for k, order in enumerate(working)
    ]


def ticks_frames(records: int, chunk: int = 100_000) -> Iterator[pl.DataFrame]:
    """``records`` ticks of the recorded quotes, lap after lap a minute of event time apart, as ``TickIngested``
    columns of ``chunk`` rows (``commands.tick_frames.events``, what `tradecore ingest file` writes): built and encoded
    a frame at a time, so that ten million take minutes, not hours."""
    quotes = pl.read_parquet(QUOTES).sort("timestamp")
    laps = pl.int_range(0, chunk, dtype=pl.Int64, eager=True)
    start = quotes.get_column("timestamp")[0]
    registry = InstrumentRegistry.from_file(ProcessorSettings().instruments_file)
    instruments = {"BTCUSDT": registry["BTCUSDT"]}
    for first in range(0, records, chunk):
        rows = (laps.head(min(chunk, records - first)) + first).alias("row")
        lap, q = rows // quotes.height, rows % quotes.height
        taken = quotes[q.to_list()]
        ticks = pl.DataFrame(
            {
                "instrument": "BTCUSDT",
                "venue": "BINANCE",
                "bid": taken.get_column("bid").round(2),
                "ask": taken.get_column("ask").round(2),
                "bid_size": taken.get_column("bid_size").round(6),
                "ask_size": taken.get_column("ask_size").round(6),
                "exchange_ts": taken.get_column("timestamp").cast(pl.Datetime("us", "UTC"))
                + (lap * 60_000_000).cast(pl.Duration("us")),
            }
        )
        stamp = Stamp(at=start, correlation_id="bench-recovery")
        yield events(tick_frame(ticks), instruments, {"BTCUSDT": first + 1}, stamp, "recorded")
