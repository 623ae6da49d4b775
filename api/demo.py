"""`tradecore demo` (`make demo`): the whole loop on the local stack, in a namespace of its own, in about a minute.

1. Starts the command API, every stream processor (with a signal-following strategy on account DEMO-S1) and the
   projector, as the subprocesses an operator would run.
2. Feeds quotes as a live feed: the recorded Binance BTCUSDT quotes shipped in data/market (or ``--data``),
   replayed from now on; on request (``--source``) live Binance tickers through ccxt, or a **synthetic**, seeded
   random walk (labelled so everywhere).
3. Meanwhile a scripted trader places, amends and cancels orders through the HTTP API — some fill, some rest, some
   risk rejects (price collar, size, kill switch).
4. Waits for the processors and the projector to settle, then prints a summary read from the query API: orders by
   status, fills, positions, PnL, rejections by reason; and leaves the API running until Ctrl-C (``--once``: exits).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import polars as pl
from rich.console import Console
from rich.table import Table

from api.auth import Role, add_user
from api.errors import ConfigurationError
from api.wiring import WriteSide, write_side
from commands.decide import Stamp
from commands.models import IngestTicks
from deploy import launch
from domain.instruments import DEFAULT_FILE, InstrumentRegistry
from domain.lifecycle import OrderStatus
from projections.settings import DatabaseSettings
from schemas.settings import RegistrySettings
from streams import kafka, pipeline
from streams.exchanges import ExchangeSettings, connect_async, parse_options
from streams.ingest import files
from streams.ingest.exchange import ExchangeIngest
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.kafka import KafkaSettings
from streams.kafka.topics import delete_namespace

REPO = Path(__file__).resolve().parents[1]
INSTRUMENT = "BTCUSDT"
STRATEGY_ACCOUNT = "DEMO-S1"
TRADER_ACCOUNTS = ("DEMO-1", "DEMO-2")
SYNTHETIC_SEED = 42
LIVE_SECONDS = 45.0  # how long the live source follows the tickers, by default


@dataclass
class Demo:
    """One run: its namespace, credentials, processes and what the script did."""

    console: Console
    port: int
    data: Path | None
    source_choice: str = "auto"  # auto | recorded | live | synthetic
    live_seconds: float = LIVE_SECONDS
    workdir: Path = field(init=False)
    prefix: str = field(init=False)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    passwords: dict[str, str] = field(default_factory=dict)
    services: dict[str, launch.Service] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    source: str = ""
    placed: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        self.prefix = f"demo-{stamp}."
        self.workdir = REPO / ".stack" / "demo" / stamp
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/] {text}", highlight=False)

    def env(self) -> dict[str, str]:
        return {
            "TRADECORE_JWT_SECRET": self.secret,
            "TRADECORE_USERS_FILE": str(self.workdir / "users.toml"),
            "TRADECORE_PORT": str(self.port),
            "TRADECORE_ORDER_WAIT_TIMEOUT_S": "10",
            "TRADECORE_STRATEGY_ACCOUNTS": json.dumps(
                [{"account_id": STRATEGY_ACCOUNT, "instrument": INSTRUMENT, "quantity": "0.01"}]
            ),
            # Bars of a second and short EMAs: a minute of quotes is enough for the strategy to change its mind.
            "TRADECORE_SIGNALS_EMA_FAST": "3",
            "TRADECORE_SIGNALS_EMA_SLOW": "8",
        }


# -- setting up ----------------------------------------------------------------------------------------------------
def users(demo: Demo) -> None:
    """A trader, a risk officer and a viewer, with fresh passwords (printed, never reused)."""
    path = demo.workdir / "users.toml"
    for name, roles, accounts in (
        ("trader", [Role.TRADER], list(TRADER_ACCOUNTS)),
        ("risk", [Role.RISK], []),
        ("viewer", [Role.VIEWER], []),
    ):
        demo.passwords[name] = secrets.token_urlsafe(12)
        add_user(path, name, demo.passwords[name], roles, accounts)


def logins(demo: Demo) -> str:
    """How to sign in, one user per role (the passwords are this run's own)."""
    return ", ".join(f"{user} / {password}" for user, password in demo.passwords.items())


def forget_old_runs(demo: Demo, settings: KafkaSettings, keep: int = 2) -> None:
    """Delete the topics of all but the newest ``keep`` earlier demo runs: each run is a namespace of its own, and a
    broker keeps files open for every partition it holds."""
    admin = kafka.admin(settings)
    runs = sorted({name.split(".", 1)[0] for name in admin.list_topics(timeout=30).topics if name.startswith("demo-")})
    for old in runs[:-keep] if len(runs) > keep else []:
        delete_namespace(admin, f"{old}.")
        demo.say(f"deleted the topics of an earlier run, {old}.")


def start_services(demo: Demo, settings: KafkaSettings) -> None:
    forget_old_runs(demo, settings)
    pipeline.prepare(settings)
    upgraded = subprocess.run([str(launch.TRADECORE), "db", "upgrade"], capture_output=True, text=True)
    if upgraded.returncode != 0:
        raise ConfigurationError(f"`tradecore db upgrade` failed:\n{upgraded.stdout}{upgraded.stderr}")
    env = {**demo.env(), "TRADECORE_TOPIC_PREFIX": settings.topic_prefix}
    # Each is ready before the next starts; the API last, ready once its dependencies answer (/readyz).
    demo.services["worker"] = launch.start_worker(demo.workdir / "worker.log", env)
    demo.services["projector"] = launch.start_projector(demo.workdir / "projector.log", env)
    demo.services["api"] = launch.start_api(demo.workdir / "api.log", env, port=demo.port)


def stop_services(demo: Demo) -> None:
    for service in reversed(demo.services.values()):
        service.stop()


# -- market data ---------------------------------------------------------------------------------------------------
def synthetic_quotes(path: Path, seed: int = SYNTHETIC_SEED, count: int = 600) -> Path:
    """A seeded random walk of BTCUSDT quotes, 100 ms apart: clearly not market data, but the same every run."""
    rng = random.Random(seed)

    def size() -> str:
        return str(Decimal(rng.randint(1, 200_000)) / 100_000)

    mid, start, rows = Decimal("40000.00"), datetime(2021, 1, 8, tzinfo=UTC), []
    for i in range(count):
        mid = max(Decimal("1000.00"), mid + Decimal(rng.randint(-300, 300)) / 100)
        half = Decimal(rng.randint(1, 5)) / 100
        rows.append((start + timedelta(milliseconds=100 * i), str(mid - half), str(mid + half), size(), size()))
    frame = pl.DataFrame(rows, schema=["timestamp", "bid", "ask", "bid_size", "ask_size"], orient="row")
    frame.write_csv(path)
    return path


LIVE_EXCHANGE = "binance"
LIVE_SYMBOL = "BTC/USDT"
# Spot markets only, and none of the calls that need an API key: the demo reads public tickers.
LIVE_OPTIONS = parse_options(
    ['options.fetchMarkets.types=["spot"]', "options.fetchCurrencies=false", "options.fetchMargins=false"]
)


def exchange_answers(timeout_s: float = 5.0) -> bool:
    """Whether the live exchange answers a ticker request within ``timeout_s`` (the demo's second choice of
    quotes). Asked on a thread of its own: an offline machine can hang in name resolution, which no asyncio
    timeout interrupts."""
    answered: list[bool] = []
    # ccxt's asyncio half takes seconds to import (lazily, streams.exchanges): imported here, before the clock
    # starts, so that a loaded machine's import is not taken for an exchange that does not answer.
    import ccxt.async_support  # noqa: F401

    async def probe() -> None:
        client = connect_async(LIVE_EXCHANGE, ExchangeSettings(exchange_timeout_ms=int(timeout_s * 1000)), LIVE_OPTIONS)
        try:
            await client.fetch_ticker(LIVE_SYMBOL)
            answered.append(True)
        except Exception:  # offline, DNS, TLS, the exchange refusing: any of them means "not now"
            answered.append(False)
        finally:
            await client.close()

    thread = threading.Thread(target=lambda: asyncio.run(probe()), name="exchange-probe", daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answered and answered[0])


def quotes_source(demo: Demo) -> Path | None:
    """The quotes file to replay, or None for live tickers through ccxt: ``--data``, else the source chosen — by
    default the recorded BTCUSDT quotes of the market-data folder (a missing file is an error, never a silent
    switch to another feed)."""
    choice = demo.source_choice
    if demo.data is not None:
        demo.source = f"{demo.data.name} (given)"
        return demo.data
    if choice in ("auto", "recorded"):
        recorded = market_file(BINANCE_QUOTES)
        demo.source = f"recorded Binance BTCUSDT quotes ({recorded.name}), replayed as a live feed"
        return recorded
    if choice == "live":
        if not exchange_answers():
            raise ConfigurationError(f"{LIVE_EXCHANGE} does not answer", hint="check the network, or --source auto")
        demo.source = f"LIVE {LIVE_EXCHANGE} {LIVE_SYMBOL} tickers through ccxt, for {demo.live_seconds:g} s"
        return None
    path = synthetic_quotes(demo.workdir / f"synthetic-quotes-seed{SYNTHETIC_SEED}.csv")
    demo.source = f"SYNTHETIC quotes (seeded random walk, seed {SYNTHETIC_SEED}; chosen with --source synthetic)"
    return path


@dataclass
class Touch:
    """The latest quote the feed appended (what the scripted trader prices its orders from)."""

    bid: Decimal | None = None
    ask: Decimal | None = None
    ticks: int = 0


class Feed(threading.Thread):
    """The quote feed's thread: ``failure`` is what stopped it, if anything did."""

    def __init__(self, append: Callable[[], Coroutine[Any, Any, None]]) -> None:
        super().__init__(name="quotes", daemon=True)
        self._append = append
        self.failure: Exception | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._append())
        except Exception as err:  # said by the demo, which stops on it
            self.failure = err

    def check(self, demo: Demo) -> None:
        """Stop the demo when the feed failed: a summary of part of the quotes would pass for the whole."""
        if self.failure is not None:
            raise ConfigurationError(f"the quote feed failed: {self.failure}", hint=f"the logs are in {demo.workdir}")


def feed(demo: Demo, settings: KafkaSettings, path: Path | None, touch: Touch, speed: float) -> Feed:
    """Append quotes in a thread of their own: a file at ``speed`` times its recorded pace from now on, or (path
    None) the live exchange's tickers for ``demo.live_seconds``."""
    instruments = InstrumentRegistry.from_file(DEFAULT_FILE)

    async def from_file(parts: WriteSide, path: Path) -> None:
        quotes = files.read(path)[0].select("bid", "ask").rows()

        def progress(done: int, _total: int) -> None:
            bid, ask = quotes[done - 1]
            touch.bid, touch.ask, touch.ticks = Decimal(bid), Decimal(ask), done

        await files.ingest(parts.gateway, path, INSTRUMENT, speed=speed, batch=20, rebase=True, progress=progress)

    async def from_exchange(parts: WriteSide) -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(demo.live_seconds, stop.set)
        client = connect_async(LIVE_EXCHANGE, ExchangeSettings(), LIVE_OPTIONS)

        async def append(batch: IngestTicks) -> int:
            appended = await parts.gateway.ingest_ticks(batch, Stamp(datetime.now(UTC), "demo-live-feed"))
            quoted = [t for t in batch.ticks if t.bid is not None and t.ask is not None]
            if quoted:
                touch.bid, touch.ask = quoted[-1].bid, quoted[-1].ask
            touch.ticks += len(batch.ticks)
            return len(appended)

        try:
            await ExchangeIngest(client, [LIVE_SYMBOL], instruments, append, interval_s=0.5, trades=False).run(stop)
        finally:
            await client.close()

    async def append() -> None:
        async with write_side(settings, RegistrySettings(), DatabaseSettings(), instruments) as parts:
            await (from_exchange(parts) if path is None else from_file(parts, path))

    thread = Feed(append)
    thread.start()
    return thread


# -- the scripted trader -------------------------------------------------------------------------------------------
class Client:
    def __init__(self, demo: Demo, user: str) -> None:
        token = httpx.post(
            f"{demo.url}/v1/auth/token", data={"username": user, "password": demo.passwords[user]}, timeout=10
        ).json()["access_token"]
        self.http = httpx.Client(base_url=demo.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()


def script(demo: Demo, touch: Touch) -> dict[str, str]:
    """Orders a desk would send: resting and marketable limits, market IOCs, amends, cancels, and some risk must
    refuse. Returns the outcome of each, by label."""
    outcomes: dict[str, str] = {}
    n = 0

    def place(http: httpx.Client, label: str, account: str = "DEMO-1", **order: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        body = {"account_id": account, "instrument": INSTRUMENT, "client_order_id": f"demo-{n:03d}", **order}
        answer = http.post("/v1/orders", params={"wait": OrderStatus.ACCEPTED}, json=body)
        document: dict[str, Any] = answer.json()
        outcomes[label] = f"{answer.status_code} {document.get('status')} {document.get('reason_code') or ''}".strip()
        demo.placed[document.get("status", str(answer.status_code))] += 1
        return document

    def tick(price: Decimal, ticks: int) -> str:
        return str((price + Decimal("0.01") * ticks).quantize(Decimal("0.01")))

    def through(ask: Decimal) -> str:
        """A BUY limit that crosses the ask even after the quotes moved on while the order was on its way: the
        recorded ask rose up to $39 within a second (3 s at ``--speed 3``); this is 0.2 % above it, in the collar."""
        return tick(ask * Decimal("1.002"), 0)

    with Client(demo, "trader") as trader, Client(demo, "risk") as risk:
        http = trader.http
        resting = []
        for i in range(6):
            assert touch.bid is not None and touch.ask is not None
            # $40-$90 away from the touch: they rest through the minute of quotes (BTC moved ~$120 in it).
            away = 4000 + 1000 * i
            side, price = ("BUY", tick(touch.bid, -away)) if i % 2 == 0 else ("SELL", tick(touch.ask, away))
            order = place(http, f"resting {side} limit {i}", side=side, order_type="LIMIT", time_in_force="GTC",
                          quantity="0.02", limit_price=price)  # fmt: skip
            resting.append(order["order_id"])
            time.sleep(0.4)
        for i in range(4):
            side = "BUY" if i % 2 == 0 else "SELL"
            place(http, f"market {side} {i}", side=side, order_type="MARKET", time_in_force="IOC", quantity="0.01")
            time.sleep(0.4)
        assert touch.ask is not None and touch.bid is not None
        place(http, "marketable limit BUY", side="BUY", order_type="LIMIT", time_in_force="GTC", quantity="0.01",
              limit_price=through(touch.ask))  # fmt: skip
        place(http, "FOK larger than the touch", side="BUY", order_type="LIMIT", time_in_force="FOK",
              quantity="50", limit_price=tick(touch.ask, 0))  # fmt: skip
        # Amend two resting orders: one to cross the touch (it fills), one to a new size.
        assert touch.ask is not None
        amended = http.patch(f"/v1/orders/{resting[0]}", json={"new_limit_price": through(touch.ask)})
        outcomes["amend a resting BUY across the touch"] = str(amended.status_code)
        amended = http.patch(f"/v1/orders/{resting[1]}", json={"new_quantity": "0.03"})
        outcomes["amend a resting SELL's size"] = str(amended.status_code)
        for order_id in resting[2:5]:
            outcomes[f"cancel {order_id[:8]}"] = str(http.delete(f"/v1/orders/{order_id}").status_code)
        # Orders risk refuses, each for its own reason.
        assert touch.bid is not None
        place(http, "limit far from the market", side="BUY", order_type="LIMIT", time_in_force="GTC",
              quantity="0.01", limit_price=tick(touch.bid * Decimal("0.8"), 0))  # fmt: skip
        place(http, "too large", side="BUY", order_type="MARKET", time_in_force="IOC", quantity="150")
        switched = risk.http.post("/v1/kill-switch", json={"account_id": "DEMO-2", "engaged": True, "reason": "demo"})
        outcomes["kill switch on DEMO-2"] = str(switched.status_code)
        time.sleep(0.5)
        place(http, "DEMO-2 with its kill switch on", account="DEMO-2", side="SELL", order_type="MARKET",
              time_in_force="IOC", quantity="0.01")  # fmt: skip
    return outcomes


# -- the summary ---------------------------------------------------------------------------------------------------
def read_all(http: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": "1000", **({"cursor": cursor} if cursor else {})}
        page = http.get(path, params=query)
        page.raise_for_status()
        document = page.json()
        rows += document["items"]
        cursor = document.get("next")
        if not cursor:
            return rows


@dataclass(frozen=True)
class Summary:
    orders: dict[OrderStatus, int]  # in lifecycle order
    fills: int
    filled_quantity: Decimal
    positions: list[dict[str, Any]]
    pnl: list[dict[str, Any]]
    rejections: dict[str, int]

    def document(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "fills": self.fills,
            "filled_quantity": str(self.filled_quantity),
            "positions": self.positions,
            "pnl": self.pnl,
            "rejections": self.rejections,
        }


def summary(demo: Demo) -> Summary:
    with Client(demo, "viewer") as viewer:
        http = viewer.http
        orders = read_all(http, "/v1/orders")
        fills = read_all(http, "/v1/fills")
        return Summary(
            orders=by_status(Counter(OrderStatus(o["status"]) for o in orders)),
            fills=len(fills),
            filled_quantity=sum((Decimal(f["quantity"]) for f in fills), Decimal(0)),
            positions=[
                {k: p[k] for k in ("account_id", "instrument", "quantity", "average_price", "realized_pnl")}
                for p in read_all(http, "/v1/positions")
            ],
            pnl=[
                {k: p[k] for k in ("account_id", "instrument", "realized_pnl", "unrealized_pnl", "total_pnl")}
                for p in read_all(http, "/v1/pnl")
            ],
            rejections=dict(Counter(r["reason_code"] for r in read_all(http, "/v1/risk/rejections"))),
        )


def by_status(counts: Counter[OrderStatus]) -> dict[OrderStatus, int]:
    """The counts in lifecycle order (a status the API answered that the enum lacks fails loudly above)."""
    return {status: counts[status] for status in OrderStatus if status in counts}


def settled_summary(demo: Demo, settings: KafkaSettings, timeout_s: float = 90) -> Summary:
    """Once the processors have consumed everything, the read models' answer when it stops changing."""
    worker = demo.services["worker"]
    pipeline.wait_until_settled(settings, worker.process, worker.log, quiet_s=2)
    deadline, last = time.monotonic() + timeout_s, None
    while True:
        current = summary(demo)
        if current == last or time.monotonic() > deadline:
            return current
        last = current
        time.sleep(1.5)


def _counts(title: str, what: str, counts: Iterable[tuple[str, int]]) -> Table:
    table = Table(title=title)
    table.add_column(what)
    table.add_column("orders", justify="right")
    for key, count in counts:
        table.add_row(key, str(count))
    return table


def show(console: Console, result: Summary) -> None:
    console.print(_counts("orders by status", "status", result.orders.items()))
    console.print(f"fills: {result.fills}, quantity {result.filled_quantity.normalize():f} {INSTRUMENT}")
    for title, rows in (("positions", result.positions), ("PnL (quote currency)", result.pnl)):
        table = Table(title=title)
        for key in rows[0] if rows else ["none"]:
            table.add_column(key, justify="right")
        for row in rows:
            table.add_row(*(str(v) for v in row.values()))
        console.print(table)
    console.print(_counts("risk rejections by reason", "reason", sorted(result.rejections.items())))


# -- the whole run -------------------------------------------------------------------------------------------------
@contextmanager
def interrupted() -> Iterator[threading.Event]:
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run(
    console: Console,
    *,
    once: bool,
    port: int,
    data: Path | None,
    speed: float = 1.0,
    source: str = "auto",
    live_seconds: float = LIVE_SECONDS,
) -> Summary:
    demo = Demo(console, port, data, source, live_seconds)
    settings = KafkaSettings().model_copy(update={"topic_prefix": demo.prefix})
    users(demo)
    demo.say(f"namespace [bold]{demo.prefix}[/]; logs in {demo.workdir}")
    try:
        start_services(demo, settings)
        demo.say(f"API, processors (strategy on {STRATEGY_ACCOUNT}) and projector up at {demo.url}")
        demo.say(f"watch it live: the dashboard at [bold]{demo.url}/[/], sign in as {logins(demo)}")
        path = quotes_source(demo)
        demo.say(f"quotes: {demo.source}")
        touch = Touch()
        feeder = feed(demo, settings, path, touch, speed)
        while touch.ticks < (20 if path is not None else 3):
            if not feeder.is_alive():
                feeder.check(demo)
                raise ConfigurationError("the quote feed stopped before 20 quotes", hint=f"see {demo.workdir}")
            time.sleep(0.2)
        demo.say("quotes flowing; the scripted trader starts")
        outcomes = script(demo, touch)
        for label, outcome in outcomes.items():
            demo.say(f"  {label}: {outcome}")
        feeder.join()
        feeder.check(demo)
        demo.say(f"all {touch.ticks} quotes in; waiting for the processors and the read models to settle")
        result = settled_summary(demo, settings)
        demo.say("summary, read from the query API:")
        show(console, result)
        console.print(json.dumps({"demo": demo.prefix, "source": demo.source, **result.document()}, default=str))
        if not once:
            console.print(
                f"\nThe API keeps running: the dashboard at [bold]{demo.url}/[/], the API docs at {demo.url}/docs. "
                f"Sign in as {logins(demo)}. Ctrl-C stops everything.",
                highlight=False,
            )
            with interrupted() as stop:
                while not stop.wait(1):
                    if not all(service.running() for service in demo.services.values()):
                        console.print("[red]a service stopped on its own; see the logs[/]")
                        break
        return result
    finally:
        stop_services(demo)
        demo.say("stopped")
