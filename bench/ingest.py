"""Ingest benchmark (issue 16): `tradecore ingest file` and `POST /v1/ticks`, a batch at a time, beside a raw
confluent-kafka producer of the same bytes, in the same run, against the shared local stack.

    .venv/bin/python bench/ingest.py                  # Binance quotes x200, FTX bars x3, 3 repeats (≈ 5 min)
    .venv/bin/python bench/ingest.py --quick          # smaller files, 1 repeat (a smoke run)

Measured, each ``--repeat`` times (median, min-max; wall time and this process's CPU time, which includes
librdkafka's threads):

* file ingest: ``streams.ingest.files.ingest`` — what `tradecore ingest file` runs after its imports — over the
  recorded Binance BTCUSDT quotes (data/market, 451 rows, Parquet floats) replicated ``--laps`` times a day apart,
  and the FTX BTC-PERP one-minute bars (45,031 rows, CSV) replicated ``--bar-laps`` times a month apart: read,
  tick rules, sequences from Postgres, ids, batch encode, produce, every record acknowledged (acks=all);
* reference: a raw ``Producer`` (the event log's own configuration) producing the very values, keys and
  timestamps of that ingest — encoded before the clock starts — then ``flush()``; ratio = ingest / raw;
* ``POST /v1/ticks``: `tradecore api` (1 worker) taking bodies of ``--per-request`` ticks (the Binance quotes
  replicated), ``--requests`` of them one after another from this process; the server's CPU beside wall time. Twice:
  as JSON documents, then as Arrow IPC streams of typed columns (a bulk loader's body).

Progress goes to stderr, the table to stdout, and the last stdout line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import polars as pl

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import (
    ApiServer,
    BenchRun,
    fmt,
    log,
    machine,
    prepare_namespace,
    profile_shares,
    py_spy,
    ratio,
    spread,
    tree_cpu,
)

QUOTES = "binance-btcusdt-quotes-2021-01-08.parquet"
BARS = "ftx-btcperp-bars-1m-2022-01.csv"
FEED = "bench-feed"


def replicated(run_dir: Path, laps: int, bar_laps: int) -> dict[str, tuple[Path, str]]:
    """The recorded files laid end to end ``laps`` times, each lap's times shifted past the previous one's."""
    from streams.ingest.recorded import market_file

    quotes = pl.read_parquet(market_file(QUOTES))
    big_quotes = pl.concat(quotes.with_columns(pl.col("timestamp") + timedelta(days=lap)) for lap in range(laps))
    quotes_path = run_dir / f"quotes-x{laps}.parquet"
    big_quotes.write_parquet(quotes_path)
    bars = pl.read_csv(market_file(BARS), infer_schema=False)
    at = pl.col("timestamp").str.to_datetime("%Y-%m-%d %H:%M:%S%.f")
    big_bars = pl.concat(
        bars.with_columns((at + timedelta(days=32 * lap)).dt.strftime("%Y-%m-%d %H:%M:%S%.6f").alias("timestamp"))
        for lap in range(bar_laps)
    )
    bars_path = run_dir / f"bars-x{bar_laps}.csv"
    big_bars.write_csv(bars_path)
    return {"binance quotes": (quotes_path, "BTCUSDT"), "ftx bars": (bars_path, "BTC-PERP")}


def ingest_timed(path: Path, instrument: str) -> tuple[float, float, int]:
    """Wall and CPU seconds of ``files.ingest`` on a write side already connected (as the CLI has it once its
    imports and connections are done), and the ticks it appended."""
    from api.wiring import write_side
    from domain.instruments import InstrumentRegistry
    from projections.settings import DatabaseSettings
    from schemas.settings import RegistrySettings
    from streams.ingest import files
    from streams.settings import KafkaSettings

    async def run() -> tuple[float, float, int]:
        instruments = InstrumentRegistry.from_file()
        async with write_side(
            KafkaSettings(), RegistrySettings(), DatabaseSettings(), instruments, loads=True
        ) as parts:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            report = await files.ingest(parts.gateway, path, instrument)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        if report.rejected:
            raise SystemExit(f"{path.name}: {len(report.rejected)} rows rejected: {report.rejected[:3]}")
        return wall, cpu, report.appended

    return asyncio.run(run())


def same_records(path: Path, instrument: str) -> tuple[list[bytes], list[bytes], list[int]]:
    """The values, keys and timestamps an ingest of ``path`` produces (sequences from 1), encoded as it encodes."""
    from commands import tick_frames
    from commands.decide import Stamp
    from domain.instruments import InstrumentRegistry
    from schemas.batch import BatchEncoder
    from schemas.batch.registry import schema_id
    from schemas.events import TickIngested
    from schemas.settings import RegistrySettings
    from streams.ingest import files, rows
    from streams.kafka.registry import registry_client
    from streams.settings import KafkaSettings

    frame, layout = files.read(path)
    layout = files.bar_layout(layout, frame, None)
    frame = frame.with_columns(pl.col("time") + layout.shift)
    ticks = rows.convert(frame, instrument, None, 1).ticks.drop(rows.LINE)
    events = tick_frames.events(
        ticks, InstrumentRegistry.from_file(), {instrument: 1}, Stamp(datetime.now(UTC), "raw"), f"file:{path.name}"
    )
    prefix = KafkaSettings().topic_prefix
    encoder = BatchEncoder(
        TickIngested, schema_id(registry_client(RegistrySettings()), TickIngested, topic_prefix=prefix)
    )
    micros = events.get_column("envelope").struct.field("occurred_at").dt.epoch("us")
    stamps = ((micros.to_numpy() / 1e6) * 1000).astype("int64").tolist()
    return encoder.encode(events), events.get_column("instrument").cast(pl.Binary).to_list(), stamps


def raw_timed(values: list[bytes], keys: list[bytes], stamps: list[int]) -> tuple[float, float, int]:
    """Wall and CPU seconds of a connected raw producer producing the records and flushing them."""
    from streams import kafka
    from streams.settings import KafkaSettings

    settings = KafkaSettings()
    producer = kafka.producer(settings, **{"linger.ms": 1, "message.timeout.ms": settings.append_timeout_ms})
    producer.list_topics(timeout=30)  # connected before the clock starts, as the event log is
    topic = settings.topic_prefix + "ticks"
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for key, value, at in zip(keys, values, stamps, strict=True):
        while True:
            try:
                producer.produce(topic, key=key, value=value, timestamp=at)
                break
            except BufferError:
                producer.poll(0.002)
    if producer.flush(60):
        raise SystemExit("the raw producer could not deliver everything")
    return time.perf_counter() - wall0, time.process_time() - cpu0, len(values)


def file_bench(path: Path, instrument: str, repeat: int) -> dict[str, Any]:
    values, keys, stamps = same_records(path, instrument)
    ingest_runs, raw_runs = [], []
    for i in range(repeat):
        log(f"  {path.name}: ingest {i + 1}/{repeat}")
        ingest_runs.append(ingest_timed(path, instrument))
        log(f"  {path.name}: raw producer {i + 1}/{repeat}")
        raw_runs.append(raw_timed(values, keys, stamps))
    n = len(values)
    if any(r[2] != n for r in ingest_runs):
        raise SystemExit(f"{path.name}: the ingest appended {[r[2] for r in ingest_runs]} ticks, not {n}")
    out: dict[str, Any] = {
        "ticks": n,
        "bytes_per_tick": sum(map(len, values)) / n,
        "ingest_per_s": spread([n / r[0] for r in ingest_runs]),
        "ingest_per_cpu_s": spread([n / r[1] for r in ingest_runs]),
        "raw_per_s": spread([n / r[0] for r in raw_runs]),
        "raw_per_cpu_s": spread([n / r[1] for r in raw_runs]),
    }
    out["ratio"] = ratio(out["ingest_per_s"]["median"], out["raw_per_s"]["median"])
    return out


def plain(value: float) -> str:
    """A recorded float as the plain decimal string of at most 8 places the API takes (``1e-05`` -> ``0.00001000``),
    as `tradecore ingest file` reads it."""
    return format(Decimal(repr(value)).quantize(Decimal("1e-8")), "f")


def tick_requests(per_request: int, requests: int) -> list[pl.DataFrame]:
    """The Binance quotes replicated, ``per_request`` ticks a request, as the JSON body's text columns."""
    from streams.ingest.recorded import market_file

    quotes = pl.read_parquet(market_file(QUOTES))
    laps = -(-per_request * requests // quotes.height)
    frame = pl.concat(quotes.with_columns(pl.col("timestamp") + timedelta(days=lap)) for lap in range(laps))
    text = frame.head(per_request * requests).select(
        instrument=pl.lit("BTCUSDT"),
        **{
            name: pl.col(name).map_elements(plain, return_dtype=pl.String)
            for name in ("bid", "ask", "bid_size", "ask_size")
        },
        exchange_ts=pl.col("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ"),
    )
    return [text.slice(i, per_request) for i in range(0, text.height, per_request)]


def json_bodies(requests: list[pl.DataFrame]) -> list[bytes]:
    return [json.dumps({"source": "bench", "ticks": ticks.to_dicts()}).encode() for ticks in requests]


def arrow_bodies(requests: list[pl.DataFrame]) -> list[bytes]:
    """The same ticks as a bulk loader sends them: an Arrow IPC stream of typed columns (decimals, UTC times)."""
    out = []
    for ticks in requests:
        typed = ticks.with_columns(
            pl.col("bid", "ask", "bid_size", "ask_size").cast(pl.Decimal(18, 8)),
            pl.col("exchange_ts").str.to_datetime("%Y-%m-%dT%H:%M:%S%.fZ", time_unit="us", time_zone="UTC"),
        )
        body = io.BytesIO()
        typed.write_ipc_stream(body)
        out.append(body.getvalue())
    return out


BODIES = {"json": "application/json", "arrow": "application/vnd.apache.arrow.stream"}


def post_bench(
    server: ApiServer, token: str, bodies: list[bytes], kind: str, per_request: int, repeat: int
) -> dict[str, Any]:
    assert server.proc is not None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": BODIES[kind]}
    walls, server_cpu, client_cpu = [], [], []
    with httpx.Client(base_url=server.url, headers=headers, params={"source": "bench"}, timeout=120) as http:
        for body in bodies[:2]:  # warm-up: imports, first-use caches
            http.post("/v1/ticks", content=body).raise_for_status()
        for i in range(repeat):
            log(f"  POST /v1/ticks, {kind}: {len(bodies)} x {per_request:,} ticks, {i + 1}/{repeat}")
            server.settle()
            cpu0 = sum(tree_cpu(server.proc.pid).values())
            wall0, mine0 = time.perf_counter(), time.process_time()
            for body in bodies:
                answer = http.post("/v1/ticks", content=body)
                if answer.status_code != 202:
                    raise SystemExit(f"POST /v1/ticks answered {answer.status_code}: {answer.text[:500]}")
            walls.append(time.perf_counter() - wall0)
            client_cpu.append(time.process_time() - mine0)
            server_cpu.append(sum(tree_cpu(server.proc.pid).values()) - cpu0)
    n = len(bodies) * per_request
    return {
        "ticks": n,
        "per_request": per_request,
        "per_s": spread([n / w for w in walls]),
        "server_per_cpu_s": spread([n / c for c in server_cpu]),
        "server_cpu_ms_per_request": spread([1000 * c / len(bodies) for c in server_cpu]),
        "client_cpu_s": spread(client_cpu),
    }


# Where a POST /v1/ticks request's time goes: each GIL-holding sample charged to the first rule matching a frame,
# scanning from the innermost frame outwards.
TICK_PROFILE_RULES: list[tuple[str, tuple[str, ...]]] = [
    (
        "JSON read (msgspec; the strict reader and pydantic when the fast path declines)",
        ("msgspec", "json/", "api/bodies.py", "pydantic"),
    ),
    ("batch encode and ids (schemas.batch, the Rust writer)", ("schemas/batch", "tradecore_avro")),
    ("Kafka produce and delivery reports (eventlog, confluent_kafka)", ("streams/eventlog.py", "confluent_kafka")),
    ("tick rules and numbering as columns (commands.tick_frames)", ("commands/tick_frames.py",)),
    ("the body's text columns and their check (api.tick_bodies)", ("api/tick_bodies.py",)),
    ("the answer: ranges per partition (api.routers.market)", ("api/routers/market.py",)),
    ("Postgres (the unit's sequences)", ("psycopg", "api/store.py")),
    ("polars elsewhere", ("polars/",)),
    (
        "HTTP protocol (uvicorn + httptools, api.http_protocol)",
        ("uvicorn/protocols", "httptools", "api/http_protocol.py"),
    ),
    ("event loop, asyncio and the rest", ("asyncio/",)),
    ("FastAPI/Starlette routing, middleware, responses", ("fastapi/", "starlette/", "uvicorn/")),
]


def profile_posts(server: ApiServer, token: str, bodies: list[bytes]) -> dict[str, float] | None:
    """The bodies posted once more under py-spy; the share of the server's GIL-holding samples per category."""
    assert server.proc is not None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": BODIES["json"]}
    out = server.log_path.with_name("profile-ticks.txt")
    server.settle()
    with (
        httpx.Client(base_url=server.url, headers=headers, timeout=120) as http,
        py_spy(server.proc.pid, 60, out) as spied,
    ):
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            for body in bodies:
                http.post("/v1/ticks", content=body).raise_for_status()
    return profile_shares(out, TICK_PROFILE_RULES) if spied() else None


def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = BenchRun.begin("ingest")
    env = bench.env()
    os.environ.update(env)  # the in-process measurements use the run's namespace
    log(f"run {bench.run_id}: topic prefix {bench.prefix!r}")
    from api.auth import Role, add_user
    from schemas.serde import register_all
    from schemas.settings import RegistrySettings
    from streams.kafka.registry import registry_client

    prepare_namespace(env)
    register_all(registry_client(RegistrySettings()), bench.prefix)
    # The machine is shared: its load beside the figures says how far wall time can be trusted.
    results: dict[str, Any] = {"machine": machine(), "repeat": args.repeat, "load_before": os.getloadavg()}
    try:
        for label, (path, instrument) in replicated(bench.run_dir, args.laps, args.bar_laps).items():
            log(f"{label}: {path.name}")
            results[label] = file_bench(path, instrument, args.repeat)
        password = "bench-" + bench.run_id
        add_user(bench.users_file, FEED, password, [Role.ADMIN], [])
        server = ApiServer(1, env, bench.run_dir)
        server.start()
        try:
            requests = tick_requests(args.per_request, args.requests)
            bodies = {"json": json_bodies(requests), "arrow": arrow_bodies(requests)}
            token = server.token(FEED, password)
            for kind, sent in bodies.items():
                results[f"post ticks {kind}"] = post_bench(server, token, sent, kind, args.per_request, args.repeat)
            if args.profile:
                results["post ticks profile"] = profile_posts(server, token, bodies["json"])
        finally:
            server.stop()
    finally:
        bench.finish(args.keep)
    results["load_after"] = os.getloadavg()
    return bench.save(results)


def table(r: dict[str, Any]) -> str:
    lines = [
        f"median of {r['repeat']} (min-max); wall and CPU of this process (librdkafka's threads included); "
        f"load average {r['load_before'][0]:.1f} before, {r['load_after'][0]:.1f} after, "
        f"on {r['machine']['cpus']} cores",
        "| measure | target | ticks/s wall | ticks per CPU-second | raw producer ticks/s (CPU) | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("binance quotes", "ftx bars"):
        x = r[label]
        lines.append(
            f"| ingest file, {label} ({x['ticks']:,} ticks) | >= 150,000 and >= 0.35x raw "
            f"| {fmt(x['ingest_per_s']['median'])} ({fmt(x['ingest_per_s']['min'])}-{fmt(x['ingest_per_s']['max'])}) "
            f"| {fmt(x['ingest_per_cpu_s']['median'])} "
            f"| {fmt(x['raw_per_s']['median'])} ({fmt(x['raw_per_cpu_s']['median'])}) | {fmt(x['ratio'], 2)}x |"
        )
    for kind in BODIES:
        p = r[f"post ticks {kind}"]
        lines.append(
            f"| POST /v1/ticks, {kind}, {p['per_request']:,} per request ({p['ticks']:,} ticks) | >= 100,000 "
            f"| {fmt(p['per_s']['median'])} ({fmt(p['per_s']['min'])}-{fmt(p['per_s']['max'])}) "
            f"| {fmt(p['server_per_cpu_s']['median'])} (server) | - | - |"
        )
    for kind in BODIES:
        p = r[f"post ticks {kind}"]
        ms = fmt(p["server_cpu_ms_per_request"]["median"], 1)
        lines.append(f"server CPU per {kind} request of {p['per_request']:,}: {ms} ms")
    for name, share in (r.get("post ticks profile") or {}).items():
        lines.append(f"  {name}: {share:.1%}" if name != "samples" else f"  ({share:,.0f} GIL-holding samples)")
    return "\n".join(lines)


def main() -> int:
    from streams.runtime import tune_collector

    tune_collector()  # as every tradecore process does
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--laps", type=int, default=200, help="times the Binance quotes are laid end to end")
    parser.add_argument("--bar-laps", type=int, default=3, help="times the FTX bars are laid end to end")
    parser.add_argument("--per-request", type=int, default=10_000, help="ticks per POST /v1/ticks")
    parser.add_argument("--requests", type=int, default=10, help="POST /v1/ticks requests per repeat")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then post the bodies for 20 s more under py-spy: where the route's time goes",
    )
    parser.add_argument("--quick", action="store_true", help="small files, 1 repeat: a smoke run")
    parser.add_argument("--keep", action="store_true", help="keep the run's topics, subjects and rows afterwards")
    args = parser.parse_args()
    if args.quick:
        args.laps, args.bar_laps, args.requests, args.repeat = 20, 1, 3, 1
    results = run(args)
    print(table(results))
    print(json.dumps(results, separators=(",", ":"), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
