"""Read-side API benchmark (issue 5): how soon a placed order is visible in ``GET /v1/orders/{id}``, and how fast
``GET /v1/positions`` answers at a constant 1,000 requests/s — each beside a reference measured in the same run.

    .venv/bin/python bench/read_api.py             # the full run (≈ 5½ min on a quiet machine), JSON last
    .venv/bin/python bench/read_api.py --quick     # smoke test (≈ 90 s)
    .venv/bin/python bench/read_api.py --profile   # and py-spy on the API server under the positions load

What runs, in a fresh topic namespace ``bench-<run>.`` on the real stack: ``tradecore api`` (uvicorn,
``--workers``), ``tradecore worker risk execution executions-by-account positions`` and ``tradecore project`` (every
projection), as an operator runs them, plus this script's load generators and observers.

1. Order visibility, at each offered rate of ``--loads`` (orders/s, open loop, constant arrival rate): a separate
   load-generator process (asyncio, aiohttp, uvloop) POSTs distinct resting BTCUSDT limit orders; for a sample of
   the accepted ones (``--sample`` per second) it follows up at once, alternating two meanings of "visible":
   - ``poll``: ``GET /v1/orders/{id}`` every ``--poll-ms`` until it answers 200; visible = when that 200 arrived;
   - ``min_offset``: ``GET /v1/orders/{id}?min_offset=<the event the POST answered with>`` (the API's wait for
     your own write; answers 200 once the projection has read past it, 503 if not within its bound: asked again);
     visible = when the 200 arrived.
   Both count from the moment the POST was sent. An order never visible within ``--visible-timeout`` is missing.
   References, same run, every accepted order: when the OrderPlaced record reached a ``read_committed``
   consumer in this process (what Kafka adds), and when the ``orders`` projection's checkpoint in Postgres passed
   its offset — read with raw psycopg every 5 ms; the checkpoint commits in the transaction that writes the row,
   so this is when a raw SELECT of the row would first find it (what the projector adds).
2. ``GET /v1/positions?limit=50`` at ``--positions-rate`` requests/s for ``--duration`` seconds with vegeta, each
   request with the token of one of ``--dashboards`` traders reading their own account (positions seeded by real
   MARKET orders filled by the execution processor on three instruments); p50/p99/p99.9, achieved rate, errors,
   server CPU per request. Reference, same run: the same SQL statement (the page with its checkpoint, as the route
   compiles it) through one raw psycopg connection at the same rate.

Medians over ``--repeat`` runs (min-max). The CPU of every component is recorded; ``bench.common.Guard`` waits for
other processes to go quiet before each measurement and repeats one they disturbed.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import functools
import json
import math
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the repository root, not bench/, first on the path

from bench import common  # noqa: E402
from bench.common import (  # noqa: E402
    ApiServer,
    BenchError,
    BenchRun,
    CpuWindow,
    Guard,
    Vegeta,
    fmt,
    fmt_ms,
    log,
    prepare_namespace,
    profiled,
)
from bench.order_entry import Orders, load_quotes  # noqa: E402

# The targets (issue 5).
TARGET_VISIBLE_P99_MS = 100.0  # GET /v1/orders/{id} finds the order, after its POST, at 1,000 orders/s
TARGET_POSITIONS_P99_MS = 5.0  # GET /v1/positions at 1,000 requests/s

TRADER, FEED = "bench-trader", "bench-feed"
PROCESSORS = ("risk", "execution", "executions-by-account", "positions")
# Positions are seeded on these instruments (BTC quoted in USD(T)); a tick of each first, then MARKET buys.
SEED = {"BTCUSDT": "0.01", "XBTUSD": "10", "BTC-PERP": "0.01"}
CHECKPOINT_POLL_S = 0.005
POSITIONS_PAGE = 50  # rows per page, as a dashboard asks


# --- the processors and the projector -----------------------------------------------------------------------------


class Pipeline:
    """``tradecore worker`` and ``tradecore project`` in the run's namespace, started and stopped by this script."""

    def __init__(self, env: dict[str, str], run_dir: Path) -> None:
        self._env = env
        self._run_dir = run_dir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        from deploy import launch

        # Metrics off (--metrics-port 0) as in the measured runs, so these start without a readiness signal: the
        # benchmark's own first reads say when they are working.
        commands = {
            "worker": ["worker", *PROCESSORS, "--metrics-port", "0"],
            "projector": ["project", "--metrics-port", "0"],
        }
        for name, command in commands.items():
            log(f"starting `tradecore {' '.join(command)}`")
            self.procs[name] = launch.start(name, command, self._run_dir / f"{name}.log", self._env).process

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise BenchError(f"the {name} exited with {proc.returncode}; see {self._run_dir / (name + '.log')}")

    def stop(self) -> None:
        from deploy import launch

        for name, proc in reversed(self.procs.items()):
            log(f"stopping the {name} (pid {proc.pid})")
            launch.stop(proc)
        self.procs.clear()


# --- references: the record in Kafka, the row in Postgres ---------------------------------------------------------


class Arrivals(threading.Thread):
    """A read_committed consumer of the orders topic from its end: when each record first became readable."""

    def __init__(self, topic: str) -> None:
        super().__init__(name="arrivals", daemon=True)
        from confluent_kafka import OFFSET_END, TopicPartition

        from streams import kafka
        from streams.settings import KafkaSettings

        self._consumer = kafka.consumer(KafkaSettings(), f"{topic}.bench-arrivals", **{"fetch.wait.max.ms": 10})
        partitions = self._consumer.list_topics(topic, timeout=30).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        self.seen: dict[tuple[int, int], float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            # poll() returns on the first record; consume() would wait out its timeout for a full batch.
            first = self._consumer.poll(0.05)
            if first is None:
                continue
            now = time.monotonic()
            for record in [first, *self._consumer.consume(1000, 0)]:
                if record.error() is None:
                    self.seen.setdefault((record.partition(), record.offset()), now)

    def close(self) -> None:
        self._halt.set()
        self.join(5)
        self._consumer.close()


class CheckpointWatch(threading.Thread):
    """The ``orders`` projection's checkpoint of the orders topic, read with raw psycopg every 5 ms: per partition,
    when each next-offset was first seen. The checkpoint commits with the rows it covers."""

    def __init__(self, conninfo: str, schema: str) -> None:
        super().__init__(name="checkpoints", daemon=True)
        import psycopg

        self._conn = psycopg.connect(conninfo, autocommit=True)
        self._query = (
            f'SELECT partition, "offset" FROM "{schema}".projection_checkpoints '
            "WHERE projection = 'orders' AND topic = 'orders'"
        )
        self.changes: dict[int, tuple[list[float], list[int]]] = {}  # partition -> (times, next offsets)
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rows = self._conn.execute(self._query).fetchall()
            now = time.monotonic()
            for partition, offset in rows:
                times, offsets = self.changes.setdefault(partition, ([], []))
                if not offsets or offset > offsets[-1]:
                    times.append(now)
                    offsets.append(offset)
            time.sleep(CHECKPOINT_POLL_S)

    def passed(self, partition: int, offset: int) -> float | None:
        """When the checkpoint of ``partition`` first passed ``offset`` (the row was committed), if it did."""
        times, offsets = self.changes.get(partition, ([], []))
        i = bisect.bisect_right(offsets, offset)
        return times[i] if i < len(offsets) else None

    def close(self) -> None:
        self._halt.set()
        self.join(5)
        self._conn.close()


# --- the visibility load generator (a process of its own) ---------------------------------------------------------


def visibility_load(config: dict[str, Any], out: str) -> None:
    """Entry point of the load-generator process: the attack, its per-order record written to ``out``."""
    import uvloop

    Path(out).write_text(json.dumps(uvloop.run(_visibility(config))))


async def _visibility(config: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    bodies: list[bytes] = [b.encode() for b in config["bodies"]]
    rate, every = config["rate"], config["every"]
    poll_s, timeout_s = config["poll_ms"] / 1000, config["timeout_s"]
    n = len(bodies)
    nan = math.nan
    sent, acked, visible = [nan] * n, [nan] * n, [nan] * n
    status, partition, offset, mode, gets = [0] * n, [-1] * n, [-1] * n, [0] * n, [0] * n
    errors: Counter[str] = Counter()
    now = time.monotonic
    headers = {"Authorization": f"Bearer {config['token']}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=config["connections"])
    async with aiohttp.ClientSession(
        config["url"], connector=connector, headers=headers, timeout=aiohttp.ClientTimeout(total=30)
    ) as http:

        async def follow(i: int, path: str, kind: int) -> None:
            deadline = sent[i] + timeout_s
            while now() < deadline:
                gets[i] += 1
                try:
                    async with http.get(path) as answer:
                        await answer.read()
                        code = answer.status
                except (aiohttp.ClientError, TimeoutError) as err:
                    errors[f"GET {type(err).__name__}"] += 1
                    code = -1
                if code == 200:
                    visible[i] = now()
                    return
                if code not in (404, 503):
                    errors[f"GET {code}"] += 1
                if kind == 1 or code != 503:
                    await asyncio.sleep(poll_s)

        async def one(i: int) -> None:
            sent[i] = now()
            try:
                async with http.post("/v1/orders", data=bodies[i]) as answer:
                    body = await answer.read()
                    status[i] = answer.status
            except (aiohttp.ClientError, TimeoutError) as err:
                errors[f"POST {type(err).__name__}"] += 1
                return
            acked[i] = now()
            if status[i] != 202:
                errors[f"POST {status[i]} {body[:80].decode(errors='replace')}"] += 1
                return
            ack = json.loads(body)
            event = ack["event"]
            partition[i], offset[i] = event["partition"], event["offset"]
            if i % every:
                return
            kind = mode[i] = 1 if (i // every) % 2 == 0 else 2
            path = f"/v1/orders/{ack['order_id']}"
            if kind == 2:
                path += f"?min_offset={event['topic']}:{event['partition']}:{event['offset']}"
            await follow(i, path, kind)

        tasks: set[asyncio.Task[None]] = set()
        start = now()
        for i in range(n):
            delay = start + i / rate - now()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(one(i))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        send_s = now() - start
        while tasks:
            await asyncio.gather(*list(tasks))
    return {
        "sent": sent,
        "acked": acked,
        "visible": visible,
        "status": status,
        "partition": partition,
        "offset": offset,
        "mode": mode,
        "gets": gets,
        "errors": dict(errors.most_common(8)),
        "send_s": send_s,
    }


def visibility_once(
    run_dir: Path,
    name: str,
    config: dict[str, Any],
    arrivals: Arrivals,
    checkpoints: CheckpointWatch,
    cpu_roots: dict[str, list[int]],
) -> dict[str, Any]:
    """One attack in a child process (its CPU counts as the load generator's), then every order's timings."""
    out = run_dir / f"{name}.json"
    process = multiprocessing.get_context("spawn").Process(target=visibility_load, args=(config, str(out)))
    with CpuWindow(cpu_roots, loadgen="vegeta") as cpu:  # the child, reaped in the window, is the load generator
        process.start()
        process.join(config["duration_s"] + config["timeout_s"] + 120)
    if process.exitcode != 0 or not out.exists():
        raise BenchError(f"{name}: the load generator failed (exit {process.exitcode})")
    time.sleep(0.2)  # the observers take in the last records
    raw = json.loads(out.read_text())
    out.unlink()
    sent, acked, visible = (np.array(raw[k], dtype=float) for k in ("sent", "acked", "visible"))
    mode, status = np.array(raw["mode"]), np.array(raw["status"])
    ok = status == 202
    first, last = np.nanmin(sent), np.nanmax(np.where(ok, acked, np.nan)) if ok.any() else np.nanmax(sent)
    kafka_at = np.array(
        [arrivals.seen.get((p, o), np.nan) for p, o in zip(raw["partition"], raw["offset"], strict=True)]
    )
    row_at = np.array(
        [
            np.nan if p < 0 else (checkpoints.passed(p, o) or np.nan)
            for p, o in zip(raw["partition"], raw["offset"], strict=True)
        ]
    )

    def latencies(at: np.ndarray, chosen: np.ndarray) -> dict[str, Any]:
        lat = at[chosen] - sent[chosen]
        seen = lat[~np.isnan(lat)]
        return {"tracked": int(chosen.sum()), "missing": int(np.isnan(lat).sum()), **common.percentiles_ms(seen)}

    return {
        "sent": len(sent),
        "accepted": int(ok.sum()),
        "errors": int((~ok).sum()),
        "error_kinds": raw["errors"],
        "sent_per_s": len(sent) / max(1e-9, raw["send_s"]),
        "accepted_per_s": float(ok.sum() / max(1e-9, last - first)),
        "post": {k: v for k, v in latencies(acked, ok).items() if k not in ("tracked", "missing")},
        "poll": latencies(visible, ok & (mode == 1)),
        "min_offset": latencies(visible, ok & (mode == 2)),
        "gets_per_poll_order": float(np.mean(np.array(raw["gets"])[ok & (mode == 1)])) if (mode == 1).any() else None,
        "kafka": latencies(kafka_at, ok),
        "row": latencies(row_at, ok),
        "cpu": cpu.result,
    }


# --- positions: seeding, and the raw SQL reference ----------------------------------------------------------------


def seed_positions(url: str, feed: str, dashboards: dict[str, tuple[str, str]], conninfo: str, schema: str) -> int:
    """A quote per instrument, then a MARKET buy per dashboard account and instrument; waits for the positions
    projection to show them. Returns the positions of the dashboard accounts."""
    import psycopg

    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ticks = [
        {
            "instrument": s,
            "bid": "40000.00",
            "ask": "40000.50",
            "bid_size": "1000",
            "ask_size": "1000",
            "exchange_ts": at,
        }
        for s in SEED
    ]
    with httpx.Client(base_url=url, timeout=30) as http:
        answer = http.post(
            "/v1/ticks", json={"source": "bench", "ticks": ticks}, headers={"Authorization": f"Bearer {feed}"}
        )
        if answer.status_code != 202:
            raise BenchError(f"seeding: POST /v1/ticks answered {answer.status_code} {answer.text[:200]}")
        time.sleep(2)  # risk and the venue take in the quotes before the orders arrive
        for account, token in dashboards.values():
            for n, (instrument, quantity) in enumerate(SEED.items()):
                order = {
                    "account_id": account,
                    "client_order_id": f"seed-{account}-{n}",
                    "instrument": instrument,
                    "side": "BUY",
                    "order_type": "MARKET",
                    "time_in_force": "IOC",
                    "quantity": quantity,
                }
                answer = http.post("/v1/orders", json=order, headers={"Authorization": f"Bearer {token}"})
                if answer.status_code != 202:
                    raise BenchError(f"seeding: POST /v1/orders answered {answer.status_code} {answer.text[:200]}")
    wanted = len(dashboards) * len(SEED)
    accounts = [account for account, _ in dashboards.values()]
    deadline = time.monotonic() + 90
    with psycopg.connect(conninfo, autocommit=True) as conn:
        while True:
            found = conn.execute(
                f'SELECT count(*) FROM "{schema}".positions WHERE account_id = ANY(%s)', (accounts,)
            ).fetchone()
            count = int(found[0]) if found else 0
            if count >= wanted:
                return count
            if time.monotonic() > deadline:
                if count == 0:
                    raise BenchError("seeding: no position appeared within 90 s; see worker.log and projector.log")
                log(f"  only {count} of {wanted} positions appeared within 90 s; measuring with those")
                return count
            time.sleep(0.5)


def raw_positions(conninfo: str, schema: str, accounts: list[str], rate: int, duration: float) -> dict[str, Any]:
    """What ``GET /v1/positions?limit=50`` asks Postgres — the one statement of the page (keyset order, one row more
    than the page to know whether there is a next) and the projection's checkpoint, exactly as the route compiles
    it — over one psycopg connection, prepared, paced."""
    import psycopg

    from projections import statements, tables

    sql = statements.read(schema, tables.positions, (("account_id", "any"),), paged=True, after=False).sql

    def params(i: int) -> dict[str, Any]:
        return {"p0": [accounts[i % len(accounts)]], "projection": "positions", "limit": POSITIONS_PAGE + 1}

    count = int(rate * duration)
    latency = np.zeros(count)
    rows = 0
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for i in range(50):  # prepared statements and caches, as a warm server has them
            conn.execute(sql, params(i), prepare=True).fetchall()
        start = time.monotonic()
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = time.perf_counter()
            rows += len(conn.execute(sql, params(i), prepare=True).fetchall())
            latency[i] = time.perf_counter() - t
        elapsed = time.monotonic() - start
    return {
        "queries": count,
        "rows_per_page": rows / count,
        "achieved_per_s": count / elapsed,
        **common.percentiles_ms(latency),
    }


# --- the run ------------------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    parser.add_argument("--duration", type=float, default=None, help="seconds per measurement (default 12)")
    parser.add_argument("--loads", type=ints, default=None, help="offered orders/s (default 100,500,1000)")
    parser.add_argument(
        "--sample", type=int, default=40, help="orders per second followed up (half polled, half min_offset)"
    )
    parser.add_argument("--poll-ms", type=float, default=10.0, help="interval of the plain GET polling")
    parser.add_argument("--visible-timeout", type=float, default=10.0, help="seconds after which an order is missing")
    parser.add_argument("--positions-rate", type=int, default=1000, help="GET /v1/positions per second")
    parser.add_argument(
        "--positions-light", type=int, default=100, help="GET /v1/positions per second of the light-load run"
    )
    parser.add_argument("--dashboards", type=int, default=20, help="traders reading their own positions")
    parser.add_argument("--workers", type=int, default=2, help="API worker processes (uvicorn)")
    parser.add_argument("--accounts", type=int, default=100, help="accounts the placed orders are spread over")
    parser.add_argument(
        "--quotes", type=Path, help="recorded quotes (parquet) for order prices (default: data/market's BTCUSDT)"
    )
    common.add_run_options(
        parser,
        quick="smoke run (≈ 90 s): 1 repetition of 4 s measurements at 200 and 1000/s, waits of 5 s for quiet",
        limit=0.3,
        retries=1,
        wait_s=None,
    )
    parser.add_argument("--profile", action="store_true", help="py-spy on the API server under the positions load")
    parser.add_argument(
        "--only", choices=("visibility", "positions"), default=None, help="measure one of the two (e.g. before/after)"
    )
    args = parser.parse_args(argv)
    if args.quiet_wait is None:
        args.quiet_wait = 5.0 if args.quick else 30.0
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.duration = args.duration or (4.0 if args.quick else 12.0)
    args.loads = args.loads or ([200, 1000] if args.quick else [100, 500, 1000])
    if min(args.repeat, args.duration, args.sample, args.positions_rate, args.positions_light, args.dashboards) <= 0:
        parser.error("--repeat, --duration, --sample, --positions-rate, --dashboards and --workers must be positive")
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = BenchRun.begin("read_api")
    run_id, prefix, run_dir, users_file = bench.run_id, bench.prefix, bench.run_dir, bench.users_file
    vegeta = Vegeta(common.install_vegeta(), run_dir)
    log(f"run {run_id}: topic prefix {prefix!r}, scratch in {run_dir.relative_to(common.ROOT)}")
    env = bench.env()
    os.environ.update(env)  # this process's observers read the same namespace

    from api.auth import Role, add_user
    from projections import namespace
    from projections.db import conninfo as database_conninfo
    from projections.settings import DatabaseSettings

    prepare_namespace(env)
    passwords = {TRADER: secrets.token_urlsafe(16), FEED: secrets.token_urlsafe(16)}
    accounts = [f"BENCH-{i:04d}" for i in range(args.accounts)]
    add_user(users_file, TRADER, passwords[TRADER], [Role.TRADER], accounts)
    add_user(users_file, FEED, passwords[FEED], [Role.ADMIN], [])
    for i in range(args.dashboards):
        passwords[f"bench-dash-{i:02d}"] = secrets.token_urlsafe(16)
        add_user(users_file, f"bench-dash-{i:02d}", passwords[f"bench-dash-{i:02d}"], [Role.TRADER], [f"DASH-{i:02d}"])

    orders = Orders(run_id.replace("-", ""), accounts, load_quotes(args.quotes))
    schema = namespace.live_schema(prefix)
    conninfo = database_conninfo(DatabaseSettings())
    results: dict[str, Any] = {
        "benchmark": "read_api",
        "run_id": run_id,
        "config": {
            k: getattr(args, k)
            for k in (
                "repeat",
                "duration",
                "loads",
                "sample",
                "poll_ms",
                "visible_timeout",
                "positions_rate",
                "positions_light",
                "dashboards",
                "workers",
                "accounts",
                "quick",
            )
        }
        | {
            "topic_prefix": prefix,
            "processors": list(PROCESSORS),
            "projector": "tradecore project (every projection)",
            "visibility_load_generator": "separate process: asyncio + uvloop + aiohttp, open loop",
            "positions_load_generator": "vegeta (bench/install_vegeta.sh), HTTP/1.1 keep-alive",
        },
        "machine": common.machine(),
    }
    server = ApiServer(args.workers, env, run_dir)
    pipeline = Pipeline(env, run_dir)
    guard = Guard(dict(bench.stack_roots), args.quiet_limit, args.quiet_wait, args.retries)
    observers: list[Arrivals | CheckpointWatch] = []
    try:
        server.start()
        pipeline.start()
        assert server.proc is not None
        guard.roots |= {"api": [server.proc.pid]} | {name: [p.pid] for name, p in pipeline.procs.items()}
        trader = server.token(TRADER, passwords[TRADER])
        feed = server.token(FEED, passwords[FEED])
        dashboards = {
            f"bench-dash-{i:02d}": (
                f"DASH-{i:02d}",
                server.token(f"bench-dash-{i:02d}", passwords[f"bench-dash-{i:02d}"]),
            )
            for i in range(args.dashboards)
        }
        arrivals = Arrivals(prefix + "orders")
        arrivals.start()
        observers.append(arrivals)
        checkpoints = CheckpointWatch(conninfo, schema)
        checkpoints.start()
        observers.append(checkpoints)
        if args.only != "positions":
            results["visibility"] = visibility_phase(args, server, pipeline, guard, orders, trader, run_dir, observers)
        if args.only != "visibility":
            log("seeding positions: a quote per instrument, then MARKET buys of every dashboard account")
            results["seeded_positions"] = seed_positions(server.url, feed, dashboards, conninfo, schema)
            log(f"  {results['seeded_positions']} positions in the read model")
            results["positions"] = positions_phase(args, server, pipeline, guard, vegeta, dashboards, conninfo, schema)
        results["disturbed_measurements_kept"] = guard.disturbed
    finally:
        for observer in observers:
            try:
                observer.close()
            except Exception as err:  # stop the processes and clean up all the same
                log(f"  could not stop the {observer.name} observer: {err}")
        pipeline.stop()
        server.stop()
        bench.finish(args.keep)
    verdict(results)
    return bench.save(results)


def visibility_phase(
    args: argparse.Namespace,
    server: ApiServer,
    pipeline: Pipeline,
    guard: Guard,
    orders: Orders,
    trader: str,
    run_dir: Path,
    observers: list[Any],
) -> dict[str, Any]:
    arrivals, checkpoints = observers

    def attack(name: str, rate: int, duration: float) -> dict[str, Any]:
        pipeline.check()
        server.settle()
        count = int(rate * duration)
        config = {
            "url": server.url,
            "token": trader,
            "bodies": [b.decode() for b in orders.take(count)],
            "rate": rate,
            "every": max(1, rate // args.sample),
            "poll_ms": args.poll_ms,
            "timeout_s": args.visible_timeout,
            "duration_s": duration,
            "connections": 512,
        }
        return visibility_once(run_dir, name, config, arrivals, checkpoints, guard.roots)

    log("order visibility: warm-up (3 s at 100 orders/s), not measured")
    attack("warmup", 100, 3)
    runs: dict[str, list[dict[str, Any]]] = {}
    for rep in range(args.repeat):
        log(f"order visibility, repetition {rep + 1}/{args.repeat}")
        for load in args.loads:
            out = guard.run(f"{load} orders/s", functools.partial(attack, f"r{rep}-load{load}", load, args.duration))
            runs.setdefault(str(load), []).append(out)
            log(
                f"  {load}/s: sent {out['sent_per_s']:,.0f}/s, accepted {out['accepted_per_s']:,.0f}/s, errors "
                f"{out['errors']}; POST p99 {fmt(out['post']['p99_ms'], 1)} ms; visible p50/p99: poll "
                f"{fmt(out['poll']['p50_ms'], 1)}/{fmt(out['poll']['p99_ms'], 1)} ms (missing "
                f"{out['poll']['missing']}), min_offset {fmt(out['min_offset']['p50_ms'], 1)}/"
                f"{fmt(out['min_offset']['p99_ms'], 1)} ms (missing {out['min_offset']['missing']}); "
                f"Kafka {fmt(out['kafka']['p99_ms'], 1)}, row {fmt(out['row']['p99_ms'], 1)} ms p99; cpu {out['cpu']}"
            )
    keys = ("p50_ms", "p99_ms", "p999_ms", "max_ms")
    return {
        load: {key: common.spread([r[key] for r in reps]) for key in ("sent_per_s", "accepted_per_s", "errors")}
        | {
            kind: {key: common.spread([r[kind][key] for r in reps]) for key in keys}
            | ({} if kind == "post" else {"tracked": sum(r[kind]["tracked"] for r in reps)})
            | ({} if kind == "post" else {"missing": sum(r[kind]["missing"] for r in reps)})
            for kind in ("post", "poll", "min_offset", "kafka", "row")
        }
        | {"cpu": _median_cpu(reps), "error_kinds": [r["error_kinds"] for r in reps]}
        for load, reps in runs.items()
    }


def positions_phase(
    args: argparse.Namespace,
    server: ApiServer,
    pipeline: Pipeline,
    guard: Guard,
    vegeta: Vegeta,
    dashboards: dict[str, tuple[str, str]],
    conninfo: str,
    schema: str,
) -> dict[str, Any]:
    rate = args.positions_rate
    url = f"{server.url}/v1/positions?limit={POSITIONS_PAGE}"
    tokens = [token for _, token in dashboards.values()]
    accounts = [account for account, _ in dashboards.values()]

    def attack(name: str, duration: float, rate: int = rate) -> dict[str, Any]:
        pipeline.check()
        server.settle()
        count = int(rate * duration) + rate
        out = vegeta.attack(
            name,
            common.get_targets((url, tokens[i % len(tokens)]) for i in range(count)),
            count,
            rate=rate,
            duration=duration,
            workers=min(rate // 50 + 10, 200),
            max_workers=2_000,
            cpu_roots=guard.roots,
            ok=200,
        )
        out["server_cpu_ms_per_request"] = (
            1000 * out["cpu"]["api"] / out["accepted_per_s"] if out["accepted_per_s"] else None
        )
        return out

    def reference() -> dict[str, Any]:
        with CpuWindow(guard.roots, loadgen="bench") as cpu:
            out = raw_positions(conninfo, schema, accounts, rate, min(args.duration, 10.0))
        return out | {"cpu": cpu.result}

    log(f"GET /v1/positions: warm-up (2 s at {rate}/s), not measured")
    attack("positions-warmup", 2)
    runs: dict[str, list[dict[str, Any]]] = {"api": [], "light": [], "raw": []}
    for rep in range(args.repeat):
        log(f"GET /v1/positions, repetition {rep + 1}/{args.repeat}")
        light = args.positions_light
        out = guard.run(
            f"GET /v1/positions at {light}/s", functools.partial(attack, f"r{rep}-light", args.duration, light)
        )
        runs["light"].append(out)
        log(
            f"  API at {light}/s: p50 {out['p50_ms']:.2f} ms, p99 {out['p99_ms']:.2f} ms, errors {out['errors']}; "
            f"server CPU {fmt(out['server_cpu_ms_per_request'], 2)} ms/request"
        )
        out = guard.run(f"GET /v1/positions at {rate}/s", functools.partial(attack, f"r{rep}-positions", args.duration))
        runs["api"].append(out)
        log(
            f"  API: sent {out['sent_per_s']:,.0f}/s, 200s {out['accepted_per_s']:,.0f}/s, errors {out['errors']} "
            f"{out['error_kinds'] or ''}; p50 {out['p50_ms']:.2f} ms, p99 {out['p99_ms']:.2f} ms, p99.9 "
            f"{out['p999_ms']:.2f} ms; server CPU {fmt(out['server_cpu_ms_per_request'], 2)} ms/request; "
            f"cpu {out['cpu']}"
        )
        raw = guard.run("raw psycopg", reference)
        runs["raw"].append(raw)
        log(
            f"  raw psycopg, same SQL at {raw['achieved_per_s']:,.0f}/s: p50 {raw['p50_ms']:.3f} ms, "
            f"p99 {raw['p99_ms']:.3f} ms, p99.9 {raw['p999_ms']:.3f} ms ({raw['rows_per_page']:.1f} rows per page)"
        )
    profile = profile_positions(args, server, guard, attack) if args.profile else None

    def summary(measured: list[dict[str, Any]]) -> dict[str, Any]:
        keys = ("sent_per_s", "accepted_per_s", "errors", "p50_ms", "p99_ms", "p999_ms", "max_ms")
        return {key: common.spread([r[key] for r in measured]) for key in keys} | {
            "server_cpu_ms_per_request": common.spread([r["server_cpu_ms_per_request"] for r in measured]),
            "cpu": _median_cpu(measured),
            "error_kinds": [r["error_kinds"] for r in measured],
        }

    return {
        "rate": rate,
        "light_rate": args.positions_light,
        "api": summary(runs["api"]),
        "light": summary(runs["light"]),
        "raw": {
            key: common.spread([r[key] for r in runs["raw"]])
            for key in ("achieved_per_s", "p50_ms", "p99_ms", "p999_ms")
        }
        | {"rows_per_page": runs["raw"][0]["rows_per_page"]},
        "profile": profile,
        "runs": runs,
    }


def profile_positions(
    args: argparse.Namespace, server: ApiServer, guard: Guard, attack: Callable[[str, float], dict[str, Any]]
) -> dict[str, Any] | None:
    assert server.proc is not None
    out = server.log_path.with_name("profile-positions.txt")
    seconds = max(5, int(args.duration))
    done = profiled(server.proc.pid, out, seconds, guard, lambda: attack("positions-profile", seconds))
    if done is None:
        return None
    measured, shares = done
    log(f"  under the profiler: p99 {measured['p99_ms']:.2f} ms; top: {list(shares.items())[:4]}")
    return {
        "file": str(out.relative_to(common.ROOT)),
        "p99_ms_profiled": measured["p99_ms"],
        "server_cpu_ms_per_request": measured["server_cpu_ms_per_request"],
        "shares_of_gil_samples": shares,
    }


def _median_cpu(runs: list[dict[str, Any]]) -> dict[str, float]:
    return {name: statistics.median(r["cpu"][name] for r in runs) for name in runs[0]["cpu"]}


# --- the verdict and the table ------------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> None:
    at_1000 = results.get("visibility", {}).get("1000")
    visible = None if at_1000 is None else at_1000["min_offset"]["p99_ms"]["median"]
    polled = None if at_1000 is None else at_1000["poll"]["p99_ms"]["median"]
    measured = results.get("positions", {}).get("rate") == 1000
    positions = results["positions"]["api"]["p99_ms"]["median"] if measured else None
    results["targets"] = {
        "visible_p99_ms_min_offset": {
            "target": TARGET_VISIBLE_P99_MS,
            "measured": visible,
            "met": None if visible is None else visible <= TARGET_VISIBLE_P99_MS,
        },
        "visible_p99_ms_poll": {
            "target": TARGET_VISIBLE_P99_MS,
            "measured": polled,
            "met": None if polled is None else polled <= TARGET_VISIBLE_P99_MS,
        },
        "positions_p99_ms": {
            "target": TARGET_POSITIONS_P99_MS,
            "measured": positions,
            "met": None if positions is None else positions <= TARGET_POSITIONS_P99_MS,
        },
    }


def _cpu(cpu: dict[str, float]) -> str:
    order = ("api", "worker", "projector", "loadgen", "bench", "kafka", "postgres", "registry", "other", "machine")
    return " ".join(f"{k} {cpu[k]:.2f}" for k in order if k in cpu)


def table(results: dict[str, Any]) -> str:
    cfg = results["config"]
    lines = [
        f"read_api run {results['run_id']}: {cfg['repeat']} x {cfg['duration']:g} s per measurement, median "
        f"(min-max); API --workers {cfg['workers']}; {results['machine']['cpus']} CPUs, "
        f"{results['machine']['cpu_model']}",
        f"CPU in cores during each measurement; 'other' = processes outside the benchmark. "
        f"{results.get('disturbed_measurements_kept', 0)} measurement(s) kept although others disturbed them.",
        "",
        "Order visible after its POST (ms from the POST's send), open loop; poll = GET every "
        f"{cfg['poll_ms']:g} ms until 200, min_offset = GET ?min_offset=<the POST's event>; references: Kafka = the "
        "record reaches a read_committed consumer, row = the orders projection's checkpoint passes it in Postgres",
        f"  {'offered/s':>9} {'sent/s':>7} {'accepted/s':>10} {'err':>4}  {'what':<10} {'p50':<18} {'p99':<18} "
        f"{'p99.9':<18} {'missing':>11}",
    ]
    for load, v in results.get("visibility", {}).items():
        for n, kind in enumerate(("post", "poll", "min_offset", "kafka", "row")):
            stat = v[kind]
            head = (
                f"  {int(load):>9} {fmt(v['sent_per_s']['median']):>7} {fmt(v['accepted_per_s']['median']):>10} "
                f"{fmt(v['errors']['median']):>4}"
                if n == 0
                else " " * 34
            )
            missing = "" if kind == "post" else f"{stat['missing']}/{stat['tracked']}"
            name = {"post": "POST ack"}.get(kind, kind)
            lines.append(
                f"{head}  {name:<10} {fmt_ms(stat['p50_ms']):<18} {fmt_ms(stat['p99_ms']):<18} "
                f"{fmt_ms(stat['p999_ms']):<18} {missing:>11}"
            )
        lines.append(f"{' ' * 36}cpu: {_cpu(v['cpu'])}")
    lines += _positions_lines(results)
    names = {
        "visible_p99_ms_min_offset": "visible p99 at 1,000/s, min_offset (ms)",
        "visible_p99_ms_poll": "visible p99 at 1,000/s, polling (ms)",
        "positions_p99_ms": "GET /v1/positions p99 at 1,000/s (ms)",
    }
    lines += ["", "Issue targets", *common.target_lines(results["targets"], names, width=42)]
    return "\n".join(lines)


def _positions_lines(results: dict[str, Any]) -> list[str]:
    if "positions" not in results:
        return []
    cfg, p = results["config"], results["positions"]
    api, light, raw = p["api"], p["light"], p["raw"]
    lines = [
        "",
        f"GET /v1/positions?limit={POSITIONS_PAGE} (vegeta, {cfg['dashboards']} traders, own account, "
        f"{results['seeded_positions']} positions seeded)",
    ]
    for rate, stat in ((p["light_rate"], light), (p["rate"], api)):
        lines += [
            f"  API at {rate}/s: sent {common.fmt_spread(stat['sent_per_s'])}/s, "
            f"200s {common.fmt_spread(stat['accepted_per_s'])}/s, errors {common.fmt_spread(stat['errors'])}",
            f"        p50 {fmt_ms(stat['p50_ms'])}  p99 {fmt_ms(stat['p99_ms'])}  p99.9 {fmt_ms(stat['p999_ms'])} ms; "
            f"server CPU per request {common.fmt_spread(stat['server_cpu_ms_per_request'], 2)} ms",
            f"        cpu: {_cpu(stat['cpu'])}",
        ]
    lines += [
        f"  raw psycopg, the same statement, one connection, at {fmt(raw['achieved_per_s']['median'])}/s: "
        f"p50 {common.fmt_spread(raw['p50_ms'], 3)}  p99 {common.fmt_spread(raw['p99_ms'], 3)}  "
        f"p99.9 {common.fmt_spread(raw['p999_ms'], 3)} ms",
        f"  API p99 / raw p99: x{fmt(common.ratio(light['p99_ms']['median'], raw['p99_ms']['median']), 1)} at "
        f"{p['light_rate']}/s, x{fmt(common.ratio(api['p99_ms']['median'], raw['p99_ms']['median']), 1)} "
        f"at {p['rate']}/s",
    ]
    if p.get("profile"):
        prof = p["profile"]
        lines += ["", f"Where the API server's Python time goes under the positions load (py-spy, {prof['file']})"]
        lines += [
            f"  {100 * s:5.1f}%  {name}" for name, s in prof["shares_of_gil_samples"].items() if name != "samples"
        ]
    return lines


def compact(results: dict[str, Any]) -> dict[str, Any]:
    out = dict(results)
    if "positions" in results:
        out["positions"] = {k: v for k, v in results["positions"].items() if k != "runs"}
    return out


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt  # SIGTERM too stops the processes and deletes the namespace (SIGINT may be ignored)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    return common.report(lambda: run(args), table, compact)


if __name__ == "__main__":
    sys.exit(main())
