"""The histories bench/recovery.py restarts processors over: days of trading on the real BTCUSDT quotes.

Risk's history is a trading session per day of event time (``tests.support.market_log.session``, moved to its day),
and the execution reports the simulated venue derives from risk's decisions on it, as the pipeline would have written
them to ``executions.by-account``: orders finish, so what risk holds is what a live system's risk would hold. Signals'
history is the quotes replayed lap after lap, a minute of event time per lap.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta

import polars as pl

from domain.instruments import InstrumentRegistry
from domain.risk import RiskEngine
from domain.venue.venue import VenueConfig
from domain.venue.venues import Venues
from schemas.events import Event, TickIngested
from streams.processors import ProcessorSettings
from tests.support.market_log import QUOTES, quote_tick, session

RECORDS_PER_DAY = 50_000
"""Input records per day of event time: the order memory (24 h) holds about this many, whatever the history."""


def _moved(event: Event, by: timedelta) -> Event:
    envelope = event.envelope
    moved = replace(envelope, occurred_at=envelope.occurred_at + by, recorded_at=envelope.recorded_at + by)
    if isinstance(event, TickIngested):
        return replace(event, envelope=moved, exchange_ts=event.exchange_ts + by)
    return replace(event, envelope=moved)


def risk_history(records: int) -> Iterator[tuple[str, str, Event]]:
    """(topic, key, event), about ``records`` of them, in event-time order; executions to executions.by-account."""
    settings = ProcessorSettings()
    instruments = InstrumentRegistry.from_file(settings.instruments_file)
    risk = RiskEngine(settings.default_limits(), instruments)
    venues = Venues(instruments, VenueConfig())
    written = 0
    day = 0
    while written < records:
        # About 0.85 input records per order and cancel, the rest ticks and execution reports.
        for event in session(int(min(RECORDS_PER_DAY, records - written) * 0.55), seed=day):
            event = _moved(event, timedelta(days=day))
            yield event.route().topic, event.key, event
            written += 1
            decided = risk.handle(event)
            for trigger in [event] if isinstance(event, TickIngested) else decided:
                for execution in venues.handle(trigger):
                    risk.handle(execution)
                    yield "executions.by-account", getattr(execution, "account_id", ""), execution
                    written += 1
        day += 1


def ticks_history(records: int) -> Iterator[tuple[str, str, Event]]:
    """``records`` ticks of the recorded quotes, lap after lap, a minute of event time apart."""
    quotes = pl.read_parquet(QUOTES).sort("timestamp").to_dicts()
    start: datetime = quotes[0]["timestamp"]
    for sequence in range(1, records + 1):
        lap, q = divmod(sequence - 1, len(quotes))
        at = start + timedelta(minutes=lap) + (quotes[q]["timestamp"] - start)
        yield ("ticks", "BTCUSDT", quote_tick(quotes[q], at, sequence))
