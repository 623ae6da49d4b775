"""Sweep benchmark (issue 14): `tradecore backtest --sweep` over a 3x3 grid with 3 walk-forward folds on the Binance
quotes, against one backtest through Kafka and one grid point in process, in the same run.

    .venv/bin/python bench/sweep.py                  # 3 repeats of each; the Kafka reference needs the stack
    .venv/bin/python bench/sweep.py --repeat 5 --jobs 2 --no-kafka

Measured, each ``--repeat`` times (median, min-max; wall time and CPU time):

* sweep: the command as a user runs it (a subprocess: imports, reading the file, the worker processes, the
  parquet and the report), ``--sweep ema_fast=3,5,8 --sweep ema_slow=13,21,34 --walk-forward 3``; CPU time is
  that of the command and its worker processes (``RUSAGE_CHILDREN``);
* reference, Kafka: `tradecore backtest` with one of those points through the stack (its CPU time leaves out the
  broker and the registry, which are not its children);
* reference, in process: one grid point replayed and scored in this process (``streams.research.sweep.run_point``),
  after the file is read.

The target: the sweep within 60 s here (2 cores shared with the stack and other work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root, not bench/, first on the path
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import TRADECORE, log, spread
from streams.ingest.recorded import BINANCE_QUOTES, market_file
from streams.research import folds, sweep

QUOTES = market_file(BINANCE_QUOTES)
GRID = ["--sweep", "ema_fast=3,5,8", "--sweep", "ema_slow=13,21,34"]
POINT = {"ema_fast": "5", "ema_slow": "21", "quantity": "0.01"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_command(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of ``tradecore`` with ``args`` (the command and every process it waited for)."""
    cpu, started = _children_cpu(), time.perf_counter()
    done = subprocess.run([str(TRADECORE), *args], env=env, capture_output=True, text=True, timeout=900)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"tradecore {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return wall, _children_cpu() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=None, help="--jobs of the sweep (default: one per CPU)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--no-kafka", action="store_true", help="leave out the reference through Kafka")
    args = parser.parse_args()
    env = dict(os.environ)
    base = ["backtest", "--data", str(QUOTES), "--instrument", "BTCUSDT", "--param", "quantity=0.01"]
    jobs = ["--jobs", str(args.jobs)] if args.jobs else []
    out = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    results: dict[str, Any] = {"cpus": os.cpu_count(), "load": os.getloadavg()}

    walls, cpus = [], []
    for i in range(args.repeat):
        wall, cpu = timed_command([*base, *GRID, "--walk-forward", str(args.folds), *jobs, "--out", str(out)], env)
        log(f"sweep {i + 1}/{args.repeat}: {wall:.1f} s wall, {cpu:.1f} s CPU")
        walls.append(wall)
        cpus.append(cpu)
    results["sweep"] = {"wall_s": spread(walls), "cpu_s": spread(cpus)}

    ticks = sweep.load(QUOTES, "BTCUSDT")
    windows = folds.windows([t.envelope.occurred_at for t in ticks], args.folds)
    job = sweep.Job("BTCUSDT", "BT-1", windows, timedelta(seconds=1))
    walls, cpus = [], []
    for _ in range(args.repeat):
        cpu, started = time.process_time(), time.perf_counter()
        sweep.run_point(job, POINT, ticks)
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    results["one_point_in_process"] = {"wall_s": spread(walls), "cpu_s": spread(cpus)}
    log(f"one point in process: {results['one_point_in_process']['wall_s']['median']:.3f} s wall")

    if not args.no_kafka:
        walls, cpus = [], []
        point = [a for k, v in POINT.items() if k != "quantity" for a in ("--param", f"{k}={v}")]
        for i in range(args.repeat):
            wall, cpu = timed_command([*base, *point, "--out", str(out / "kafka")], env)
            log(f"one backtest through Kafka {i + 1}/{args.repeat}: {wall:.1f} s wall")
            walls.append(wall)
            cpus.append(cpu)
        results["one_backtest_kafka"] = {"wall_s": spread(walls), "cpu_s": spread(cpus)}
        results["ratio_sweep_to_one_kafka_backtest"] = (
            results["sweep"]["wall_s"]["median"] / results["one_backtest_kafka"]["wall_s"]["median"]
        )
    results["ratio_sweep_to_one_point_in_process"] = (
        results["sweep"]["wall_s"]["median"] / results["one_point_in_process"]["wall_s"]["median"]
    )
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
