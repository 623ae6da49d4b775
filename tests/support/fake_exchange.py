"""A local Binance spot REST server for tests: what ccxt's ``binance`` calls, answered in Binance's own format.

It replays the real recorded BTCUSDT quotes and trades of 2021-01-08 (``data/market``): every call of
``ticker/24hr`` serves the next recorded quote, every call of ``aggTrades`` publishes the next ``trades_per_poll``
recorded trades. Orders are matched against the current quote: a marketable order takes the touch (TAKER), a
resting LIMIT fills at its limit (MAKER) when ``step()`` brings a quote that reaches it. Fees are Binance's
default 0.1%, in the asset received. Signed endpoints check ``X-MBX-APIKEY`` and the HMAC-SHA256 ``signature`` of
the query string and body, as Binance does; balances are checked, so an order too big is refused with Binance's
-2010 "Account has insufficient balance for requested action.".

Faults: ``inject(kind, path=..., method=..., times=...)`` makes the next requests (of a path, or any) answer 429 with
Retry-After and Binance's -1003, 418, 500, drop the connection without an answer, or stall past the client's
timeout. Everything the server answered is in ``requests`` (method, path, status), for assertions.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import polars as pl

from streams.ingest.recorded import BINANCE_QUOTES, BINANCE_TRADES, market_file

QUOTES = market_file(BINANCE_QUOTES)
TRADES = market_file(BINANCE_TRADES)
API_KEY = "test-api-key-8f3a"
SECRET = "test-secret-1c9e7d"  # a test double's credentials, valid only against this server
FEE_RATE = Decimal("0.001")
EIGHT = Decimal("0.00000001")


def _ms(value: Any) -> int:
    return int(value.timestamp() * 1000)


def _dec(value: float) -> Decimal:
    """A recorded float as the decimal Binance prints: 8 places (the recording's float noise rounds away)."""
    return Decimal(repr(value)).quantize(EIGHT)


def _s(value: Decimal) -> str:
    return f"{value.quantize(EIGHT):f}"


@dataclass(frozen=True)
class Quote:
    time_ms: int
    bid: Decimal
    bid_size: Decimal
    ask: Decimal
    ask_size: Decimal


@dataclass(frozen=True)
class Print:
    trade_id: int
    time_ms: int
    price: Decimal
    quantity: Decimal
    buyer_maker: bool


def recorded_quotes() -> list[Quote]:
    rows = pl.read_parquet(QUOTES).sort("timestamp").to_dicts()
    return [
        Quote(_ms(r["timestamp"]), _dec(r["bid"]), _dec(r["bid_size"]), _dec(r["ask"]), _dec(r["ask_size"]))
        for r in rows
    ]


def recorded_trades() -> list[Print]:
    rows = pl.read_parquet(TRADES).sort("trade_id").to_dicts()
    return [
        Print(r["trade_id"], _ms(r["timestamp"]), _dec(r["price"]), _dec(r["quantity"]), r["buyer_maker"] == "True")
        for r in rows
    ]


@dataclass
class Order:
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal | None
    time_ms: int
    status: str = "NEW"
    executed: Decimal = Decimal(0)
    quote_executed: Decimal = Decimal(0)
    update_ms: int = 0
    fills: list[dict[str, Any]] = field(default_factory=list)

    def as_binance(self) -> dict[str, Any]:
        return {
            "symbol": "BTCUSDT",
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": _s(self.price or Decimal(0)),
            "origQty": _s(self.quantity),
            "executedQty": _s(self.executed),
            "cummulativeQuoteQty": _s(self.quote_executed),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.order_type,
            "side": self.side,
            "stopPrice": "0.00000000",
            "icebergQty": "0.00000000",
            "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms,
            "isWorking": True,
            "workingTime": self.time_ms,
            "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }


# The answers of the refusal faults, as Binance words them.
REFUSALS = {
    "429": (
        429,
        -1003,
        "Too much request weight used; current limit is 6000 request weight per 1 MINUTE. "
        "Please use WebSocket Streams for live updates to avoid polling the API.",
    ),
    "418": (
        418,
        -1003,
        "Way too much request weight used; IP banned until 1610064060000. "
        "Please use WebSocket Streams for live updates to avoid bans.",
    ),
    "500": (500, -1001, "Internal error; unable to process your request. Please try again."),
}


class BinanceError(Exception):
    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(msg)
        self.status, self.code, self.msg = status, code, msg


@dataclass
class Fault:
    kind: str  # "429" | "418" | "500" | "drop" (no answer) | "stall" (carried out, answered too late)
    path: str | None
    method: str | None
    times: int


class FakeBinance:
    """The exchange's state: the replay cursors, the orders, the balances, the faults to inject."""

    def __init__(self, *, trades_per_poll: int = 40, balances: dict[str, Decimal] | None = None) -> None:
        self.quotes = recorded_quotes()
        self.trades = recorded_trades()
        self.trades_per_poll = trades_per_poll
        self.quote_at = 0  # the quote now at the touch
        self.quotes_served = 0
        self.trades_published = 0
        self.balances = balances if balances is not None else {"BTC": Decimal(10), "USDT": Decimal(1_000_000)}
        self.orders: dict[int, Order] = {}
        self.my_trades: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str, int]] = []
        self.stalled: list[tuple[str, str]] = []  # requests carried out whose answer came too late
        self.served_quotes: list[Quote] = []  # every quote a ticker answer carried, in order
        self.served_trades: dict[int, Print] = {}  # every trade an aggTrades answer carried, by id
        self.stall_s = 3.0
        self._next_order_id = 5_000_000
        self._next_trade_id = 9_000_000
        self.lock = threading.RLock()

    # --- test controls -------------------------------------------------------------------------------------------
    def inject(self, kind: str, *, path: str | None = None, method: str | None = None, times: int = 1) -> None:
        with self.lock:
            self.faults.append(Fault(kind, path, method, times))

    def step(self, quotes: int = 1) -> Quote:
        """Move the touch on by ``quotes`` recorded quotes; resting orders it reaches fill as MAKER."""
        with self.lock:
            self.quote_at = min(self.quote_at + quotes, len(self.quotes) - 1)
            quote = self.quotes[self.quote_at]
            for order in list(self.orders.values()):
                if order.status in ("NEW", "PARTIALLY_FILLED") and order.price is not None:
                    touch = quote.ask if order.side == "BUY" else quote.bid
                    if (order.side == "BUY" and touch <= order.price) or (
                        order.side == "SELL" and touch >= order.price
                    ):
                        self._fill(order, order.price, order.quantity - order.executed, maker=True, at=quote.time_ms)
            return quote

    def served(self, path: str) -> int:
        return sum(1 for _, p, status in self.requests if p == path and status == 200)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.path in (None, path) and fault.method in (None, method) and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self.faults.remove(fault)
                    return fault
            return None

    # --- public market data --------------------------------------------------------------------------------------
    def exchange_info(self) -> dict[str, Any]:
        return {
            "timezone": "UTC",
            "serverTime": self.quotes[self.quote_at].time_ms,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
            ],
            "exchangeFilters": [],
            "symbols": [
                _symbol_info("BTCUSDT", "BTC", "USDT", "0.01000000", "0.00001000", "0.00001000", "9000.00000000"),
                _symbol_info("ETHBTC", "ETH", "BTC", "0.00001000", "0.00010000", "0.00010000", "100000.00000000"),
            ],
        }

    def ticker_24hr(self, symbol: str) -> dict[str, Any]:
        with self.lock:
            self.quote_at = min(self.quotes_served, len(self.quotes) - 1)
            self.quotes_served += 1
            quote = self.quotes[self.quote_at]
            self.served_quotes.append(quote)
            last = self._last_trade_before(quote.time_ms)
        return {
            "symbol": symbol,
            "priceChange": "0.00000000",
            "priceChangePercent": "0.000",
            "weightedAvgPrice": _s(last.price),
            "prevClosePrice": _s(last.price),
            "lastPrice": _s(last.price),
            "lastQty": _s(last.quantity),
            "bidPrice": _s(quote.bid),
            "bidQty": _s(quote.bid_size),
            "askPrice": _s(quote.ask),
            "askQty": _s(quote.ask_size),
            "openPrice": _s(self.trades[0].price),
            "highPrice": _s(max(t.price for t in self.trades)),
            "lowPrice": _s(min(t.price for t in self.trades)),
            "volume": "1000.00000000",
            "quoteVolume": "39500000.00000000",
            "openTime": quote.time_ms - 86_400_000,
            "closeTime": quote.time_ms,
            "firstId": self.trades[0].trade_id,
            "lastId": last.trade_id,
            "count": last.trade_id - self.trades[0].trade_id + 1,
        }

    def agg_trades(self, query: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            self.trades_published = min(self.trades_published + self.trades_per_poll, len(self.trades))
            published = self.trades[: self.trades_published]
        limit = min(int(query.get("limit", 500)), 1000)
        if "fromId" in query:
            chosen = [t for t in published if t.trade_id >= int(query["fromId"])][:limit]
        elif "startTime" in query:
            start, end = int(query["startTime"]), int(query.get("endTime", 2**62))
            chosen = [t for t in published if start <= t.time_ms <= end][:limit]
        else:
            chosen = published[-limit:]
        with self.lock:
            self.served_trades.update((t.trade_id, t) for t in chosen)
        return [
            {
                "a": t.trade_id,
                "p": _s(t.price),
                "q": _s(t.quantity),
                "f": t.trade_id,
                "l": t.trade_id,
                "T": t.time_ms,
                "m": t.buyer_maker,
                "M": True,
            }
            for t in chosen
        ]

    def _last_trade_before(self, time_ms: int) -> Print:
        before = [t for t in self.trades if t.time_ms <= time_ms]
        return before[-1] if before else self.trades[0]

    # --- signed trading endpoints --------------------------------------------------------------------------------
    def new_order(self, q: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            client_id = q.get("newClientOrderId") or f"x-{self._next_order_id}"
            if any(
                o.client_order_id == client_id and o.status in ("NEW", "PARTIALLY_FILLED") for o in self.orders.values()
            ):
                raise BinanceError(400, -2010, "Duplicate order sent.")
            order_type, side = q["type"], q["side"]
            quantity = Decimal(q["quantity"])
            price = Decimal(q["price"]) if "price" in q else None
            if quantity <= 0 or (order_type == "LIMIT" and price is None):
                raise BinanceError(
                    400, -1013, "Invalid quantity." if quantity <= 0 else "Price is required for LIMIT orders."
                )
            quote = self.quotes[self.quote_at]
            if side == "BUY" and (price or quote.ask) * quantity > self.balances["USDT"]:
                raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
            if side == "SELL" and quantity > self.balances["BTC"]:
                raise BinanceError(400, -2010, "Account has insufficient balance for requested action.")
            self._next_order_id += 1
            order = Order(
                self._next_order_id,
                client_id,
                side,
                order_type,
                q.get("timeInForce", "GTC"),
                quantity,
                price,
                quote.time_ms,
            )
            self.orders[order.order_id] = order
            touch = quote.ask if side == "BUY" else quote.bid
            size = quote.ask_size if side == "BUY" else quote.bid_size
            marketable = price is None or (touch <= price if side == "BUY" else touch >= price)
            if marketable:
                take = min(quantity, size)
                if order.time_in_force != "FOK" or take == quantity:
                    self._fill(order, touch, take, maker=False, at=quote.time_ms)
            if order.status in ("NEW", "PARTIALLY_FILLED") and (order_type == "MARKET" or order.time_in_force != "GTC"):
                order.status = "EXPIRED"
                order.update_ms = quote.time_ms
            answer = order.as_binance()
            answer["transactTime"] = quote.time_ms
            answer["fills"] = [dict(f) for f in order.fills]
            return answer

    def find(self, q: dict[str, str]) -> Order:
        for order in self.orders.values():
            if ("orderId" in q and str(order.order_id) == q["orderId"]) or (
                "origClientOrderId" in q and order.client_order_id == q["origClientOrderId"]
            ):
                return order
        raise BinanceError(400, -2013, "Order does not exist.")

    def cancel(self, q: dict[str, str]) -> dict[str, Any]:
        with self.lock:
            try:
                order = self.find(q)
            except BinanceError:
                raise BinanceError(400, -2011, "Unknown order sent.") from None
            if order.status not in ("NEW", "PARTIALLY_FILLED"):
                raise BinanceError(400, -2011, "Unknown order sent.")
            order.status = "CANCELED"
            order.update_ms = self.quotes[self.quote_at].time_ms
            answer = order.as_binance()
            answer["origClientOrderId"] = order.client_order_id
            return answer

    def account_trades(self, q: dict[str, str]) -> list[dict[str, Any]]:
        with self.lock:
            mine = [t for t in self.my_trades if "orderId" not in q or str(t["orderId"]) == q["orderId"]]
            return [dict(t) for t in mine]

    def _fill(self, order: Order, price: Decimal, quantity: Decimal, *, maker: bool, at: int) -> None:
        if quantity <= 0:
            return
        self._next_trade_id += 1
        quote_qty = price * quantity
        received = quantity if order.side == "BUY" else quote_qty
        commission = (received * FEE_RATE).quantize(EIGHT, rounding=ROUND_HALF_EVEN)
        asset = "BTC" if order.side == "BUY" else "USDT"
        sign = 1 if order.side == "BUY" else -1
        self.balances["BTC"] += sign * quantity - (commission if asset == "BTC" else 0)
        self.balances["USDT"] -= sign * quote_qty + (commission if asset == "USDT" else 0)
        order.executed += quantity
        order.quote_executed += quote_qty
        order.status = "FILLED" if order.executed == order.quantity else "PARTIALLY_FILLED"
        order.update_ms = at
        order.fills.append(
            {
                "price": _s(price),
                "qty": _s(quantity),
                "commission": _s(commission),
                "commissionAsset": asset,
                "tradeId": self._next_trade_id,
            }
        )
        self.my_trades.append(
            {
                "symbol": "BTCUSDT",
                "id": self._next_trade_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "price": _s(price),
                "qty": _s(quantity),
                "quoteQty": _s(quote_qty),
                "commission": _s(commission),
                "commissionAsset": asset,
                "time": at,
                "isBuyer": order.side == "BUY",
                "isMaker": maker,
                "isBestMatch": True,
            }
        )


def _symbol_info(
    symbol: str, base: str, quote: str, tick: str, step: str, min_qty: str, max_qty: str
) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": "1000000.00000000", "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": min_qty, "maxQty": max_qty, "stepSize": step},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": "0.00000000",
                "maxQty": "100.00000000",
                "stepSize": "0.00000000",
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": "5.00000000",
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the test reads ``requests``
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        exchange = self.server.exchange
        split = urlsplit(self.path)
        path = split.path
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        fault = exchange.take_fault(method, path)
        if fault is not None and fault.kind == "drop":
            exchange.requests.append((method, path, 0))
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        try:
            if fault is not None and fault.kind in REFUSALS:
                raise BinanceError(*REFUSALS[fault.kind])
            query = dict(parse_qsl(split.query))
            status, answer = 200, self._route(method, path, query, split.query, body)
        except BinanceError as err:
            status, answer = err.status, {"code": err.code, "msg": err.msg}
        exchange.requests.append((method, path, status))
        if fault is not None and fault.kind == "stall":
            exchange.stalled.append((method, path))
            time.sleep(exchange.stall_s)  # done at the exchange, but the answer comes too late for the client
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-MBX-USED-WEIGHT-1M", str(len(exchange.requests)))
        if status in (418, 429):
            self.send_header("Retry-After", "1")
        self.end_headers()
        self.wfile.write(payload)

    def _route(self, method: str, path: str, query: dict[str, str], raw_query: str, body: str) -> Any:
        exchange = self.server.exchange
        public: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", "/api/v3/ping"): lambda: {},
            ("GET", "/api/v3/time"): lambda: {"serverTime": int(time.time() * 1000)},
            ("GET", "/api/v3/exchangeInfo"): exchange.exchange_info,
            ("GET", "/api/v3/ticker/24hr"): lambda: exchange.ticker_24hr(query["symbol"]),
            ("GET", "/api/v3/aggTrades"): lambda: exchange.agg_trades(query),
        }
        if (method, path) in public:
            return public[(method, path)]()
        signed = {
            ("POST", "/api/v3/order"): exchange.new_order,
            ("GET", "/api/v3/order"): lambda q: exchange.find(q).as_binance(),
            ("DELETE", "/api/v3/order"): exchange.cancel,
            ("GET", "/api/v3/myTrades"): exchange.account_trades,
        }
        if (method, path) not in signed:
            raise BinanceError(404, -1000, f"the fake exchange does not serve {method} {path}")
        params = self._verified(raw_query, body)
        return signed[(method, path)](params)

    def _verified(self, raw_query: str, body: str) -> dict[str, str]:
        """Binance's check: the API key, then HMAC-SHA256(secret, query string + body without the signature)."""
        if self.headers.get("X-MBX-APIKEY") != API_KEY:
            raise BinanceError(401, -2015, "Invalid API-key, IP, or permissions for action.")
        total = raw_query + body
        unsigned, _, signature = total.rpartition("&signature=")
        expected = hmac.new(SECRET.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            raise BinanceError(400, -1022, "Signature for this request is not valid.")
        params = dict(parse_qsl(unsigned))
        if "timestamp" not in params:
            raise BinanceError(
                400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        return params


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, exchange: FakeBinance) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.exchange = exchange


def cli_options(base_url: str) -> list[str]:
    """The ``tradecore`` options that point ccxt's binance at the fake: its URL, spot markets only, no sapi calls."""
    return [
        "--base-url",
        base_url,
        "--exchange-option",
        'options.fetchMarkets.types=["spot"]',
        "--exchange-option",
        "options.fetchCurrencies=false",
        "--exchange-option",
        "options.fetchMargins=false",
    ]


@contextmanager
def serve(exchange: FakeBinance | None = None) -> Iterator[tuple[FakeBinance, str]]:
    """Run a fake Binance on a free port; yields it and its base URL (``http://127.0.0.1:PORT``)."""
    exchange = exchange or FakeBinance()
    server = _Server(exchange)
    thread = threading.Thread(target=server.serve_forever, name="fake-binance", daemon=True)
    thread.start()
    try:
        yield exchange, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
