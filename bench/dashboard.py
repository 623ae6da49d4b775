"""The dashboard and its live feed (issue #13): first load, fill committed → visible in the browser, and 200 connected
live clients while orders flow.

A real `tradecore api`, every processor (`tradecore worker`) and the projector (`tradecore project`) on the local
stack, in a namespace of the run's own; Debian's chromium, headless, under Playwright.

1. First load on loopback: navigation to the page's `load` event, and to every panel filled (sign-in, the data
   and the live feed open), over ``--repeat`` fresh pages; the bytes of the assets.
2. Fill committed → visible: ≥ 200 fills (orders crossing the quote), each fill's `committed_at` (the projector's
   commit, Postgres clock) against the time the page had it in its table (the browser's own `Date.now()`, same
   machine clock), p50/p95.
3. 200 SSE clients: `POST /v1/orders` at 100/s for ``--duration`` s, without and then with 200 connected
   `GET /v1/stream` clients (another process), ``--rounds`` times; the POST p50/p99 of each way's median round, the
   API's CPU and memory, and its Postgres connections.

    .venv/bin/python bench/dashboard.py [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
import numpy as np
import psutil
from sqlalchemy import text

from api.auth import Role, add_user
from bench.common import (
    TRADECORE,
    ApiServer,
    BenchError,
    BenchRun,
    Vegeta,
    fmt,
    install_vegeta,
    log,
    post_targets,
    prepare_namespace,
    report,
)
from projections import namespace
from projections.db import engine
from projections.settings import DatabaseSettings

PASSWORD = "bench dashboard password"
# Orders spread over accounts, as a desk's are.
ACCOUNTS = [f"BENCH-D{i}" for i in range(1, 21)]
BID, ASK = "39400.00", "39401.00"
TARGETS = {"first_load_s": 1.0, "assets_bytes": 1_000_000, "fill_visible_p95_ms": 500, "p99_worse_pct": 20}


# -- the pipeline --------------------------------------------------------------------------------------------------
def start(run: BenchRun, command: list[str], env: dict[str, str], name: str) -> subprocess.Popen[bytes]:
    with (run.run_dir / f"{name}.log").open("wb") as out:
        return subprocess.Popen([str(TRADECORE), *command], env=env, stdout=out, stderr=subprocess.STDOUT)


def tick(client: httpx.Client) -> None:
    quote = {"instrument": "BTCUSDT", "bid": BID, "ask": ASK, "bid_size": "1000", "ask_size": "1000"}
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}+00:00"
    answer = client.post("/v1/ticks", json={"source": "bench", "ticks": [{**quote, "exchange_ts": stamp}]})
    if answer.status_code != 202:
        raise BenchError(f"tick refused: {answer.text}")


def order(price: str, side: str = "BUY") -> dict[str, Any]:
    return {
        "account_id": ACCOUNTS[uuid.uuid4().int % len(ACCOUNTS)],
        "client_order_id": f"b-{uuid.uuid4().hex[:16]}",
        "instrument": "BTCUSDT",
        "side": side,
        "order_type": "LIMIT",
        "time_in_force": "GTC",
        "quantity": "0.001",
        "limit_price": price,
    }


# -- 1 and 2: the browser ------------------------------------------------------------------------------------------
def browser_measures(url: str, trader: httpx.Client, env: dict[str, str], repeat: int, fills: int) -> dict[str, Any]:
    import tempfile

    from playwright.sync_api import sync_playwright

    from tests.support.browser import launch

    loads, data, logins, sizes = [], [], [], []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = launch(playwright, Path(profile))
        for _ in range(repeat):
            page = context.new_page()
            started = time.perf_counter()
            page.goto(f"{url}/", wait_until="load")
            loads.append(time.perf_counter() - started)
            sizes.append(page.evaluate(ASSET_BYTES))
            sign_in(page)
            page.wait_for_function("performance.getEntriesByName('tradecore:loaded').length > 0", timeout=60_000)
            marks = page.evaluate(MARKS)
            logins.append(marks["signed-in"] - marks["clicked"])
            data.append(marks["loaded"] - marks["signed-in"])
            page.close()
        full = [a + b for a, b in zip(loads, data, strict=True)]
        log(f"first loads: {[round(x, 3) for x in full]} s")

        page = context.new_page()
        page.goto(f"{url}/")
        sign_in(page)
        page.wait_for_function("document.querySelector('#live').textContent.includes('checkpoint')")
        log(f"placing {fills} crossing orders, one every 50 ms")
        for i in range(fills):
            trader.post(
                "/v1/orders",
                json=order(
                    str(float(ASK) + 10) if i % 2 == 0 else str(float(BID) - 10), "BUY" if i % 2 == 0 else "SELL"
                ),
            )
            time.sleep(0.05)
        deadline = time.monotonic() + 120
        while page.evaluate("window.tradecoreSeen.size") < fills and time.monotonic() < deadline:
            time.sleep(0.5)
        seen: dict[str, float] = page.evaluate("Object.fromEntries(window.tradecoreSeen)")
        arrived: dict[str, float] = page.evaluate("Object.fromEntries(window.tradecoreArrived)")
        context.close()
    committed = fill_commits(env)
    delays = np.array([(seen[f] / 1000 - committed[f]) for f in seen if f in committed])
    transit = np.array([(arrived[f] / 1000 - committed[f]) for f in arrived if f in committed])
    if len(delays) < fills:
        raise BenchError(f"only {len(delays)} of {fills} fills reached the page")
    return {
        "load_s": statistics.median(loads),
        "data_s": statistics.median(data),
        "sign_in_s": statistics.median(logins),
        "first_load_s": statistics.median(full),
        "first_loads_s": full,
        "assets_bytes": max(sizes),
        "fills": len(delays),
        "fill_visible_ms": {f"p{q}": float(np.percentile(delays, q)) * 1000 for q in (50, 95, 99)},
        # Of which the way to the browser (commit → the stream's message parsed), before the page renders it.
        "fill_arrived_ms": {f"p{q}": float(np.percentile(transit, q)) * 1000 for q in (50, 95, 99)},
    }


# The bytes of the page and every asset it loaded (not the API's answers), as the browser counts them.
ASSET_BYTES = """performance.getEntriesByType('navigation')[0].encodedBodySize
    + performance.getEntriesByType('resource').filter((e) => !e.name.includes('/v1/'))
        .reduce((sum, e) => sum + e.encodedBodySize, 0)"""
# Seconds since navigation: the sign-in click, the token's arrival, every panel loaded with the live feed open.
MARKS = """({clicked: window.clickedAt / 1000,
    'signed-in': performance.getEntriesByName('tradecore:signed-in')[0].startTime / 1000,
    loaded: performance.getEntriesByName('tradecore:loaded')[0].startTime / 1000})"""


def sign_in(page: Any) -> None:
    page.get_by_label("User name").fill("trader")
    page.get_by_label("Password").fill(PASSWORD)
    page.evaluate("window.clickedAt = performance.now()")
    page.get_by_role("button", name="Sign in").click()


def asset_bytes(response: Any, url: str) -> int:
    """The bytes of a static asset the page loaded (0 for an API answer or a failed request)."""
    if not response.url.startswith(url) or "/v1/" in response.url or not response.ok:
        return 0
    return len(response.body())


def fill_commits(env: dict[str, str]) -> dict[str, float]:
    """fill_id -> when the projector committed it (epoch seconds), from the live feed's table."""
    schema = namespace.live_schema(env["TRADECORE_TOPIC_PREFIX"])
    eng = engine(DatabaseSettings())
    try:
        with eng.connect() as conn:
            rows = conn.execute(
                text(
                    f"SELECT row->>'fill_id', extract(epoch FROM committed_at) FROM {namespace.quoted(schema)}."
                    "live_changes WHERE kind = 'fill'"
                )
            ).all()
    finally:
        eng.dispose()
    return {fill: float(at) for fill, at in rows}


# -- 3: 200 clients ------------------------------------------------------------------------------------------------
def sse_clients(url: str, token: str, count: int, ready: Any, stop: Any, received: Any) -> None:
    """``count`` clients of GET /v1/stream in this process, each counting the changes it receives.

    Each is a bare asyncio socket that counts ``data:`` fields in the bytes as they come, without parsing lines or
    JSON: the clients stand for browsers on other machines, so what they cost here should be as little as possible
    of the 2 cores the API, the pipeline and the stack share (httpx's line iterator took 0.39 cores for 200)."""
    target = urlsplit(url)
    request = (
        f"GET /v1/stream HTTP/1.1\r\nHost: {target.netloc}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    marker = b"\ndata: "

    async def one() -> None:
        reader, writer = await asyncio.open_connection(target.hostname, target.port)
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise BenchError(f"GET /v1/stream answered {head.splitlines()[0]!r}")
        with ready.get_lock():
            ready.value += 1
        tail = b""
        while chunk := await reader.read(1 << 16):
            data = tail + chunk
            found = data.count(marker)
            tail = data[-(len(marker) - 1) :]  # a marker split across two reads is counted once, in the second
            if found:
                with received.get_lock():
                    received.value += found
        writer.close()

    async def main() -> None:
        tasks = [asyncio.create_task(one()) for _ in range(count)]
        while not stop.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


APP_NAME = "bench-dashboard-api"  # the API's connections name themselves so (PGAPPNAME, read by libpq)


def db_connections() -> int:
    """The API's Postgres connections, as the server counts them."""
    eng = engine(DatabaseSettings())
    try:
        with eng.connect() as conn:
            query = text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name")
            return int(conn.execute(query, {"name": APP_NAME}).scalar_one())
    finally:
        eng.dispose()


@dataclass
class OrderLoad:
    """``POST /v1/orders`` at a fixed rate, open loop, from vegeta (a Go process: the load costs the 2 cores little;
    an asyncio/httpx generator here took 0.39 cores for 100/s, as much as the API), with the cores each component
    used meanwhile."""

    api: ApiServer
    vegeta: Vegeta
    token: str
    roots: dict[str, list[int]]  # component -> root pids, for the CPU split

    def window(self, name: str, rate: int, duration: float) -> dict[str, Any]:
        assert self.api.proc is not None
        count = int(rate * duration) + rate
        bodies = (json.dumps(order(str(float(BID) - 100 - i % 50))).encode() for i in range(count))  # rest: no fills
        out = self.vegeta.attack(
            name,
            post_targets(f"{self.api.url}/v1/orders", bodies, self.token),
            count,
            rate=rate,
            duration=duration,
            workers=rate // 50 + 10,
            max_workers=2_000,
            cpu_roots={"api": [self.api.proc.pid], **self.roots},
        )
        pid = self.api.proc.pid
        rss = sum(p.memory_info().rss for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)])
        return out | {"api_cores": out["cpu"]["api"], "api_rss_mb": rss / 2**20, "db_connections": db_connections()}


@contextmanager
def live_clients(api: ApiServer, viewer: str, count: int) -> Iterator[tuple[int, Any]]:
    """``count`` connected ``GET /v1/stream`` clients in a process of their own: (its pid, messages received)."""
    ready, received = multiprocessing.Value("i", 0), multiprocessing.Value("l", 0)
    stop = multiprocessing.Event()
    clients = multiprocessing.Process(target=sse_clients, args=(api.url, viewer, count, ready, stop, received))
    clients.start()
    try:
        deadline = time.monotonic() + 120
        while ready.value < count:
            if time.monotonic() > deadline:
                raise BenchError(f"only {ready.value} of {count} live clients connected")
            time.sleep(0.2)
        assert clients.pid is not None
        yield clients.pid, received
    finally:
        stop.set()
        clients.join(30)


def median_window(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """The window whose p99 is the median of the rounds' (its other figures come with it), with every round's p99."""
    middle = sorted(windows, key=lambda w: w["p99_ms"])[(len(windows) - 1) // 2]
    return middle | {"p99_ms_rounds": [w["p99_ms"] for w in windows]}


def clients_measures(load: OrderLoad, viewer: str, count: int, duration: float, rounds: int) -> dict[str, Any]:
    """``rounds`` times: orders without live clients, then with ``count`` of them connected; the median round of
    each way (this machine's p99 doubles or halves from one 20 s window to the next: one pair says little)."""
    api, without, with_clients, idle = load.api, [], [], {}
    for n in range(1, rounds + 1):
        log(f"round {n}/{rounds}: POST /v1/orders at 100/s for {duration:g} s without live clients")
        api.settle()
        without.append(load.window("without-clients", 100, duration))
        with live_clients(api, viewer, count) as (pid, received):
            idle = {"db_connections": db_connections()}
            api.settle()
            log(f"round {n}/{rounds}: {count} live clients connected; POST /v1/orders at 100/s for {duration:g} s")
            before = received.value
            window = dataclasses.replace(load, roots={**load.roots, "clients": [pid]}).window(
                "with-clients", 100, duration
            )
            time.sleep(2)
            with_clients.append(
                window | {"clients_cores": window["cpu"]["clients"], "messages_received": received.value - before}
            )
    return {
        "clients": count,
        "rounds": rounds,
        "without": median_window(without),
        "with": median_window(with_clients),
        "idle_with_clients": idle,
    }


# -- the run -------------------------------------------------------------------------------------------------------
def run(args: argparse.Namespace) -> dict[str, Any]:
    from tests.support.browser import MISSING, installed

    if installed() is None:
        raise BenchError(MISSING)  # before anything is started: the first measure needs the browser
    bench = BenchRun.begin("dashboard")
    add_user(bench.users_file, "trader", PASSWORD, [Role.TRADER], ACCOUNTS)
    add_user(bench.users_file, "viewer", PASSWORD, [Role.VIEWER], [])
    add_user(bench.users_file, "feed", PASSWORD, [Role.ADMIN], [])
    env = {**bench.env(), "TRADECORE_LOGIN_RATE_LIMIT": "1000/minute"}
    prepare_namespace(env)
    api = ApiServer(1, {**env, "PGAPPNAME": APP_NAME}, bench.run_dir)
    processes = [start(bench, ["worker"], env, "worker"), start(bench, ["project"], env, "projector")]
    roots = {**bench.stack_roots, "pipeline": [proc.pid for proc in processes]}
    try:
        api.start()
        with httpx.Client(base_url=api.url, timeout=30) as client:
            client.headers["Authorization"] = f"Bearer {api.token('feed', PASSWORD)}"
            tick(client)
        time.sleep(1)
        trader_token = api.token("trader", PASSWORD)
        with httpx.Client(base_url=api.url, timeout=30, headers={"Authorization": f"Bearer {trader_token}"}) as t:
            browser = browser_measures(api.url, t, env, args.repeat, args.fills)
        load = OrderLoad(api, Vegeta(install_vegeta(), bench.run_dir), trader_token, roots)
        live = clients_measures(load, api.token("viewer", PASSWORD), args.clients, args.duration, args.rounds)
        return bench.save({"run": bench.run_id, "browser": browser, "live": live, "targets": TARGETS})
    finally:
        api.stop()
        for proc in processes:
            proc.terminate()
            proc.wait(60)
        bench.finish(keep=False)


def table(results: dict[str, Any]) -> str:
    b, live = results["browser"], results["live"]
    w, c = live["without"], live["with"]
    worse = (c["p99_ms"] / w["p99_ms"] - 1) * 100 if w["p99_ms"] and c["p99_ms"] else None
    rounds = "/".join(fmt(p, 0) for p in w["p99_ms_rounds"]), "/".join(fmt(p, 0) for p in c["p99_ms_rounds"])
    return "\n".join(
        [
            f"run {results['run']}",
            f"first load: page {b['load_s'] * 1000:.0f} ms + data and live feed {b['data_s'] * 1000:.0f} ms = "
            f"{b['first_load_s'] * 1000:.0f} ms (target ≤ 1000; sign-in's password hash apart: "
            f"{b['sign_in_s'] * 1000:.0f} ms); assets {b['assets_bytes'] / 1000:.0f} kB (≤ 1000)",
            f"fill committed → visible over {b['fills']} fills: p50 {fmt(b['fill_visible_ms']['p50'])} ms, "
            f"p95 {fmt(b['fill_visible_ms']['p95'])} ms (target p95 ≤ 500); of which to the browser: p50 "
            f"{fmt(b['fill_arrived_ms']['p50'])} ms, p95 {fmt(b['fill_arrived_ms']['p95'])} ms",
            f"POST /v1/orders at 100/s: p50/p99 {fmt(w['p50_ms'], 1)}/{fmt(w['p99_ms'], 1)} ms without live clients, "
            f"{fmt(c['p50_ms'], 1)}/{fmt(c['p99_ms'], 1)} ms with {live['clients']} ({fmt(worse, 0)} % worse p99, "
            f"target ≤ 20); medians of {live['rounds']} rounds, p99 each round: {rounds[0]} ms without, "
            f"{rounds[1]} ms with",
            f"API cores {w['api_cores']:.2f} → {c['api_cores']:.2f}; RSS {w['api_rss_mb']:.0f} → "
            f"{c['api_rss_mb']:.0f} MB; Postgres connections {w['db_connections']} → "
            f"{live['idle_with_clients']['db_connections']} idle with clients → {c['db_connections']} under load; "
            f"{c['messages_received']:,} messages to the clients (their process: {c['clients_cores']:.2f} cores)",
            "cores by component, without → with clients: "
            + ", ".join(f"{k} {w['cpu'].get(k, 0):.2f} → {v:.2f}" for k, v in c["cpu"].items()),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="first loads measured (default 3)")
    parser.add_argument("--fills", type=int, default=200, help="fills timed to the browser (default 200)")
    parser.add_argument("--clients", type=int, default=200, help="live clients (default 200)")
    parser.add_argument("--duration", type=float, default=20, help="seconds of orders each way (default 20)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of without/with clients (default 3)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 load, 20 fills, 20 clients, 5 s, 1 round")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.fills, args.clients, args.duration, args.rounds = 1, 20, 20, 5, 1
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return report(lambda: run(args), table, lambda r: r)


if __name__ == "__main__":
    sys.exit(main())
