"""Exchanges through ccxt: how tradecore builds a client, points it at a mirror, and retries what may be retried.

Every client is built by ``connect`` with ``enableRateLimit`` (ccxt spaces requests by the exchange's declared
rate limit) and ``number = str``: ccxt then leaves prices, amounts and fees as the exchange printed them, so they
become exact ``Decimal``s, never floats. ``base_url`` re-points every REST endpoint of the exchange at one host
(a local mirror or test server); ``options`` are ccxt config keys with dotted paths (``options.fetchMarkets.types
=["spot"]``), values parsed as JSON where they are JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import tenacity
from pydantic import Field, SecretStr
from tenacity import AttemptManager

from domain.errors import MarketNotUsable
from domain.instruments import Instrument, InstrumentRegistry, from_market
from schemas.settings import TradecoreSettings
from streams.errors import StreamsError

# ccxt takes seconds to import (its async half as much again): imported where a client is made or a failure
# classified, so the modules that only name these helpers (the demo, the live book, the CLI's other commands) and
# the sync-only commands do not pay for it.
if TYPE_CHECKING:
    import ccxt
    import ccxt.async_support


def transient() -> tuple[type[Exception], ...]:
    """The failures worth retrying: ccxt's OperationFailed is "failed for reasons that are not the request's": its
    NetworkError family (RequestTimeout, ExchangeNotAvailable, OnMaintenance, RateLimitExceeded = HTTP 429,
    DDoSProtection = HTTP 418) and the exchange's own "internal error, try again" (Binance -1000/-1001)."""
    import ccxt

    return (ccxt.OperationFailed,)


class ExchangeConfigError(StreamsError):
    """The exchange named, or an option given for it, is not usable."""


class ExchangeSettings(TradecoreSettings):
    """Credentials and endpoint of the exchange (``TRADECORE_EXCHANGE_<FIELD>``); never logged."""

    exchange_api_key: SecretStr = Field(SecretStr(""), description="API key of the exchange account (signed calls).")
    exchange_secret: SecretStr = Field(SecretStr(""), description="API secret of the exchange account.")
    exchange_base_url: str = Field("", description="Send every REST call to this scheme://host[:port] instead.")
    exchange_timeout_ms: int = Field(10_000, ge=100, description="How long one HTTP request may take.")


def parse_options(pairs: Iterable[str]) -> dict[str, Any]:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values are JSON where they parse as JSON."""
    config: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ExchangeConfigError(
                f"exchange option {pair!r} is not KEY=VALUE", hint="e.g. options.fetchCurrencies=false"
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        *parents, leaf = key.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ExchangeConfigError(f"exchange option {pair!r} sets a key under a plain value")
        node[leaf] = value
    return config


def _rebased(urls: Any, base: str) -> Any:
    if isinstance(urls, dict):
        return {key: _rebased(value, base) for key, value in urls.items()}
    if isinstance(urls, str) and urls.startswith(("http://", "https://")):
        return base.rstrip("/") + urlsplit(urls).path
    return urls


def _config(settings: ExchangeSettings, options: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {"enableRateLimit": True, "timeout": settings.exchange_timeout_ms, **options}
    if settings.exchange_api_key.get_secret_value():
        config["apiKey"] = settings.exchange_api_key.get_secret_value()
        config["secret"] = settings.exchange_secret.get_secret_value()
    return config


def connect(exchange_id: str, settings: ExchangeSettings, options: Mapping[str, Any]) -> ccxt.Exchange:
    """A synchronous ccxt client of ``exchange_id`` (a ccxt id: ``binance``, ``kraken`` …)."""
    import ccxt

    return _prepared(_class(ccxt, exchange_id)(_config(settings, options)), settings)


def connect_async(
    exchange_id: str, settings: ExchangeSettings, options: Mapping[str, Any]
) -> ccxt.async_support.Exchange:
    """An asyncio ccxt client of ``exchange_id``; close it with ``await client.close()``."""
    import ccxt.async_support

    return _prepared(_class(ccxt.async_support, exchange_id)(_config(settings, options)), settings)


def _class(module: Any, exchange_id: str) -> Any:
    import ccxt

    if exchange_id not in ccxt.exchanges:
        raise ExchangeConfigError(f"ccxt knows no exchange {exchange_id!r}", hint="see ccxt.exchanges, e.g. binance")
    return getattr(module, exchange_id)


def _prepared(client: Any, settings: ExchangeSettings) -> Any:
    client.number = str  # exact: amounts and prices stay the exchange's strings
    if settings.exchange_base_url:
        client.urls["api"] = _rebased(client.urls["api"], settings.exchange_base_url)
    return client


def dec(value: Any) -> Decimal | None:
    """A ccxt number (a string under ``number = str``) as an exact Decimal; ``None`` stays ``None``."""
    return None if value is None or value == "" else Decimal(str(value))


@dataclass(frozen=True)
class Backoff:
    """The wait before retrying a call the exchange failed transiently: ``first_s`` doubling up to ``max_s``, drawn
    from the upper half of that (jitter, so that clients spread out), never sooner than a ``floor_s`` (Retry-After).
    """

    first_s: float = 0.2
    max_s: float = 30.0

    def delay(self, attempt: int, floor_s: float = 0.0) -> float:
        """How long to wait after failed attempt number ``attempt`` (1 for the first)."""
        ceiling = min(self.max_s, self.first_s * 2 ** (attempt - 1))
        return max(floor_s, random.uniform(ceiling / 2, ceiling))  # jitter, not security


OnRetry = Callable[[BaseException, float], None]


def _policy(client: Any, backoff: Backoff, stopped: Callable[[], bool], on_retry: OnRetry) -> dict[str, Any]:
    """Tenacity's settings for a call to ``client``: transient failures retried until ``stopped()``, which ends the
    attempts quietly (no error); anything else raised at once."""

    def retried(state: tenacity.RetryCallState) -> None:
        error = None if state.outcome is None else state.outcome.exception()
        assert error is not None and state.next_action is not None  # tenacity sleeps only after a failure
        on_retry(error, state.next_action.sleep)

    return {
        "retry": tenacity.retry_if_exception_type(transient()),
        "wait": lambda state: backoff.delay(state.attempt_number, retry_after_s(client)),
        "stop": lambda _state: stopped(),
        "before_sleep": retried,
        "retry_error_callback": lambda _state: None,
    }


def attempts(client: Any, backoff: Backoff, stop: threading.Event, on_retry: OnRetry) -> Iterator[AttemptManager]:
    """Attempts at a call to ``client`` (``for attempt in attempts(...): with attempt: ...``): a transient failure is
    retried after ``backoff``'s delay, told to ``on_retry(error, delay)``; none is made once ``stop`` is set."""
    policy = _policy(client, backoff, stop.is_set, on_retry)

    def sleep(seconds: float) -> None:
        stop.wait(seconds)  # ends early when stopped

    for attempt in tenacity.Retrying(sleep=sleep, **policy):
        if stop.is_set():
            return
        yield attempt


async def attempts_async(
    client: Any, backoff: Backoff, stop: asyncio.Event, on_retry: OnRetry
) -> AsyncIterator[AttemptManager]:
    """``attempts`` for asyncio code: the waits end early when ``stop`` is set."""

    async def sleep(seconds: float) -> None:
        await wait_unless_stopped(stop, seconds)

    async for attempt in tenacity.AsyncRetrying(sleep=sleep, **_policy(client, backoff, stop.is_set, on_retry)):
        if stop.is_set():
            return
        yield attempt


async def wait_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def retry_after_s(client: Any) -> float:
    """The Retry-After the exchange sent with its last answer (seconds), or 0."""
    headers = getattr(client, "last_response_headers", None) or {}
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return float(value)
            except ValueError:
                return 0.0
    return 0.0


def import_instruments(client: ccxt.Exchange, symbols: Sequence[str] = ()) -> tuple[InstrumentRegistry, list[str]]:
    """The exchange's markets (``load_markets``) as instruments, and why any market was left out.

    ``symbols`` are ccxt's unified symbols (``BTC/USDT``) or the exchange's own ids (``BTCUSDT``); none: all.

    Raises:
        ExchangeConfigError: a symbol asked for is not one of the exchange's markets.
    """
    markets: dict[str, Any] = client.load_markets()
    by_id = {market["id"]: market for market in markets.values()}
    unknown = [s for s in symbols if s not in markets and s not in by_id]
    if unknown:
        raise ExchangeConfigError(
            f"{client.id} has no market {', '.join(unknown)}", hint="give unified symbols (BTC/USDT) or ids (BTCUSDT)"
        )
    chosen = [markets.get(s) or by_id[s] for s in symbols] if symbols else list(markets.values())
    instruments: list[Instrument] = []
    skipped: list[str] = []
    for market in chosen:
        try:
            instruments.append(from_market(market, client.id, client.precisionMode))
        except MarketNotUsable as err:
            skipped.append(str(err))
    return InstrumentRegistry(instruments), skipped
