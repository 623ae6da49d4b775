"""The same work's CPU done back to back and done after the thread slept: why an order costs the API twice the CPU
at 1,000 orders/s that it costs in a closed loop.

Under an open load an API worker does an order in pieces — the request, then the claim's answer, the append's, the
record's — each after its event loop slept waiting for the next. On this machine (a 2-core VM) a piece of Python run
right after a sleep of a few milliseconds costs several times the CPU it costs run back to back: caches and branch
predictors gone cold, the virtual CPU back from idle. This measures it on two pieces — a fixed piece of Python (an
order-sized JSON document dumped and parsed) and one ``SELECT 1`` through psycopg to the stack's Postgres — each
timed by its own thread's CPU clock, so the sleep itself is never counted.

    .venv/bin/python bench/cold_work.py                     # gaps 0, 0.5, 2 and 10 ms; the stack's Postgres
    .venv/bin/python bench/cold_work.py --no-postgres       # the Python piece alone, no stack needed

Reference: the same piece back to back (gap 0), in the same round. Reported per gap: the median over ``--repeat``
rounds of each round's mean CPU per piece, and its ratio to the reference. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import psycopg

from bench.common import log, machine
from projections.db import conninfo
from projections.settings import DatabaseSettings

ORDER = {
    "account_id": "ACC-1",
    "client_order_id": "c-000001",
    "instrument": "BTC-USDT",
    "side": "BUY",
    "order_type": "LIMIT",
    "quantity": "0.01",
    "limit_price": "43000.50",
    "time_in_force": "GTC",
    "legs": [{"n": i, "tag": f"leg-{i}"} for i in range(20)],
}


def python_piece() -> None:
    json.loads(json.dumps(ORDER))


def statement_piece(connection: psycopg.Connection[tuple[object, ...]]) -> Callable[[], None]:
    def piece() -> None:
        connection.execute("SELECT 1", prepare=True).fetchall()

    return piece


def cpu_per_piece(piece: Callable[[], None], gap_s: float, count: int) -> float:
    """Mean CPU seconds of ``piece``, run ``count`` times with a sleep of ``gap_s`` after each."""
    for _ in range(50):  # warm
        piece()
    spent = 0.0
    for _ in range(count):
        started = time.thread_time()
        piece()
        spent += time.thread_time() - started
        if gap_s:
            time.sleep(gap_s)
    return spent / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gaps-ms", default="0,0.5,2,10", help="sleeps after each piece, ms; 0 is the reference")
    parser.add_argument("--count", type=int, default=400, help="pieces per gap and round")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-postgres", action="store_true", help="only the Python piece")
    args = parser.parse_args()
    gaps = [float(g) / 1000 for g in args.gaps_ms.split(",")]
    if gaps[0] != 0:
        parser.error("--gaps-ms must start with 0, the reference")

    pieces: dict[str, Callable[[], None]] = {"python": python_piece}
    connection = None
    if not args.no_postgres:
        connection = psycopg.connect(conninfo(DatabaseSettings()), autocommit=True)
        pieces["psycopg SELECT 1"] = statement_piece(connection)
    rounds: dict[str, dict[float, list[float]]] = {name: {gap: [] for gap in gaps} for name in pieces}
    try:
        for n in range(args.repeat):
            for name, piece in pieces.items():
                for gap in gaps:  # every gap in every round: the machine's drift falls on all alike
                    rounds[name][gap].append(cpu_per_piece(piece, gap, args.count))
            log(f"round {n + 1}/{args.repeat} done")
    finally:
        if connection is not None:
            connection.close()

    results: dict[str, dict[str, dict[str, float]]] = {}
    for name, by_gap in rounds.items():
        reference = statistics.median(by_gap[0.0])
        results[name] = {}
        for gap, values in by_gap.items():
            cpu = statistics.median(values)
            results[name][f"{gap * 1000:g}"] = {"cpu_us": cpu * 1e6, "ratio": cpu / reference}
            print(
                f"{name:18s} sleep {gap * 1000:4g} ms after each: {cpu * 1e6:7.1f} µs CPU per piece "
                f"({min(values) * 1e6:.1f} to {max(values) * 1e6:.1f}), x{cpu / reference:.2f} back to back"
            )
    print(json.dumps({"benchmark": "cold_work", "config": vars(args), "machine": machine(), "results": results}))


if __name__ == "__main__":
    main()
