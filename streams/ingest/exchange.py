"""`tradecore ingest ccxt`: poll an exchange's tickers and trades through ccxt and append them as TickIngested.

Each round asks every symbol for its ticker and (unless off) the trades since the last one seen; what is new
becomes one ``IngestTicks`` batch for the command gateway — the same path as ``POST /v1/ticks``: validated against
the instrument registry, numbered gap-free per instrument, appended by the idempotent ``acks=all`` producer.

* A quote is new when the ticker's time, bid, ask or sizes changed; it carries bid/ask and their sizes.
* Trades are asked for ``since`` the newest trade time seen and deduplicated by trade id, so a trade printed in
  the same millisecond as the last one seen is neither lost nor sent twice; a full page is followed at once.
* Transient failures (network errors, timeouts, 5xx, HTTP 429/418 rate limits) are retried with exponential
  backoff and full jitter, never sooner than the exchange's Retry-After; the round is repeated from the state
  of the last success, so nothing is skipped and nothing is sent twice. ccxt's ``enableRateLimit`` spaces the
  requests by the exchange's declared limit. Anything else (bad credentials, unknown symbol) stops the ingest.

Polling, not ccxt.pro websockets: it works with every exchange ccxt supports and with a plain HTTP mirror.
"""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from commands.models import IngestTicks, Tick
from domain.instruments import Instrument
from streams.exchanges import Backoff, ExchangeConfigError, attempts_async, dec, wait_unless_stopped

Sink = Callable[[IngestTicks], Awaitable[int]]  # appends a batch, returns how many events it appended
PAGE = 1000  # trades asked for per request (Binance's maximum)


@dataclass
class IngestStats:
    """What the ingest did so far: shown as progress, returned at the end."""

    quotes: int = 0
    trades: int = 0
    retries: int = 0
    rounds: int = 0
    last_error: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def events(self) -> int:
        return self.quotes + self.trades

    def rate(self) -> float:
        return self.events / max(time.monotonic() - self.started, 1e-9)


@dataclass
class _Cursor:
    """Per symbol: the last quote sent, and the trades seen at the newest trade time."""

    market: dict[str, Any]
    instrument: Instrument
    quote: tuple[Any, ...] | None = None
    since: int | None = None
    seen_at_since: set[str] = field(default_factory=set)


def tick_from_ticker(ticker: Mapping[str, Any], instrument: Instrument) -> Tick | None:
    """The quote a ccxt ticker holds, or ``None`` when it has no bid, ask or time."""
    if ticker.get("timestamp") is None or (ticker.get("bid") is None and ticker.get("ask") is None):
        return None
    return Tick(
        instrument=instrument.symbol,
        venue=instrument.venue,
        bid=dec(ticker.get("bid")),
        ask=dec(ticker.get("ask")),
        bid_size=dec(ticker.get("bidVolume")),
        ask_size=dec(ticker.get("askVolume")),
        exchange_ts=_utc(ticker["timestamp"]),
    )


def tick_from_trade(trade: Mapping[str, Any], instrument: Instrument) -> Tick:
    """A trade print: ``last`` and ``last_size`` at the exchange's trade time."""
    return Tick(
        instrument=instrument.symbol,
        venue=instrument.venue,
        last=dec(trade["price"]),
        last_size=dec(trade["amount"]),
        exchange_ts=_utc(trade["timestamp"]),
    )


def _utc(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


class ExchangeIngest:
    """Polls ``symbols`` on an asyncio ccxt ``client`` and hands new ticks to ``sink`` in batches."""

    def __init__(
        self,
        client: Any,
        symbols: Sequence[str],
        instruments: Mapping[str, Instrument],
        sink: Sink,
        *,
        interval_s: float = 1.0,
        trades: bool = True,
        max_events: int | None = None,
        backoff: Backoff | None = None,
        on_progress: Callable[[IngestStats], None] | None = None,
    ) -> None:
        self.client = client
        self.symbols = list(symbols)
        self.instruments = instruments
        self.sink = sink
        self.interval_s = interval_s
        self.trades = trades
        self.max_events = max_events
        self.backoff = backoff or Backoff()
        self.on_progress = on_progress or (lambda _stats: None)
        self.stats = IngestStats()
        self.source = f"ccxt-{client.id}"

    async def run(self, stop: asyncio.Event) -> IngestStats:
        """Poll until ``stop`` is set or ``max_events`` are appended; raises on a failure that is not transient."""
        cursors = await self._retrying(self._cursors, stop)
        while cursors is not None and not stop.is_set() and not self._done():
            for cursor in cursors:
                ticks = await self._retrying(functools.partial(self._poll, cursor), stop)
                if ticks is None:
                    break
                await self._append(ticks)
                if self._done():
                    break
            self.stats.rounds += 1
            self.on_progress(self.stats)
            if not self._done():
                await wait_unless_stopped(stop, self.interval_s)
        return self.stats

    def _done(self) -> bool:
        return self.max_events is not None and self.stats.events >= self.max_events

    async def _cursors(self) -> list[_Cursor]:
        await self.client.load_markets()
        cursors = []
        for symbol in self.symbols:
            market = self.client.markets.get(symbol) or self.client.markets_by_id.get(symbol, [None])[0]
            if market is None:
                raise ExchangeConfigError(f"{self.client.id} has no market {symbol}", hint="e.g. BTC/USDT or BTCUSDT")
            instrument = self.instruments.get(market["id"])
            if instrument is None:
                raise ExchangeConfigError(
                    f"{market['id']} ({market['symbol']}) is not in the instrument registry",
                    hint=f"tradecore instruments import {self.client.id} --symbols {market['symbol']} --out FILE, "
                    "then TRADECORE_INSTRUMENTS_FILE=FILE",
                )
            cursors.append(_Cursor(market, instrument))
        return cursors

    async def _retrying(self, call: Callable[[], Awaitable[Any]], stop: asyncio.Event) -> Any:
        """``call()``, retried with backoff while it fails transiently; ``None`` if stopped meanwhile."""
        async for attempt in attempts_async(self.client, self.backoff, stop, self._retried):
            with attempt:
                return await call()
        return None

    def _retried(self, err: BaseException, _delay: float) -> None:
        self.stats.retries += 1
        self.stats.last_error = f"{type(err).__name__}: {str(err)[:200]}"
        self.on_progress(self.stats)

    async def _poll(self, cursor: _Cursor) -> list[tuple[Tick, str | None]]:
        """New ticks of one symbol (and the trade id of each trade); the cursor moves only when all succeeded."""
        symbol = cursor.market["symbol"]
        found: list[tuple[Tick, str | None]] = []
        trades: list[dict[str, Any]] = []
        if self.trades:
            since = cursor.since
            while True:
                page = await self.client.fetch_trades(symbol, since=since, limit=PAGE)
                trades += page
                if len(page) < PAGE:
                    break
                since = max(int(t["timestamp"]) for t in page)
        # The ticker last: asking again for trades after a failure repeats nothing, a second ticker may move on.
        quote = tick_from_ticker(await self.client.fetch_ticker(symbol), cursor.instrument)
        key = None if quote is None else (quote.exchange_ts, quote.bid, quote.ask, quote.bid_size, quote.ask_size)
        if quote is not None and key != cursor.quote:
            found.append((quote, None))
            cursor.quote = key
        fresh: dict[str, dict[str, Any]] = {}
        for trade in trades:
            tid = str(trade["id"])
            if tid not in cursor.seen_at_since and (cursor.since is None or int(trade["timestamp"]) >= cursor.since):
                fresh[tid] = trade
        for tid, trade in sorted(fresh.items(), key=lambda item: (int(item[1]["timestamp"]), item[0])):
            found.append((tick_from_trade(trade, cursor.instrument), tid))
            at = int(trade["timestamp"])
            if cursor.since is None or at > cursor.since:
                cursor.since, cursor.seen_at_since = at, set()
            cursor.seen_at_since.add(tid)
        return sorted(found, key=lambda item: item[0].exchange_ts)

    async def _append(self, found: list[tuple[Tick, str | None]]) -> None:
        if self.max_events is not None:
            found = found[: self.max_events - self.stats.events]
        if not found:
            return
        batch = IngestTicks(source=self.source, ticks=[tick for tick, _ in found])
        await self.sink(batch)
        trades = sum(1 for _, tid in found if tid is not None)
        self.stats.trades += trades
        self.stats.quotes += len(found) - trades
        self.on_progress(self.stats)


def correlation_id() -> str:
    """One per ingest run: every batch it appends shares it."""
    return f"ingest-{uuid.uuid4()}"
