"""What every benchmark under bench/ shares: progress on stderr, medians over repeats, the CPU each component used
on this shared 2-core machine, a guard that waits for other processes to go quiet, the stack check, and the
clean-up of a run's topic namespace.

Run the benchmarks from the repository root as scripts (``.venv/bin/python bench/<name>.py``); ``bootstrap()`` puts
the root first on ``sys.path`` so ``bench/streams.py`` does not shadow the ``streams`` package.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psutil
from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
TRADECORE = Path(sys.executable).with_name("tradecore")

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


class BenchError(Exception):
    """The benchmark cannot go on; the message says what to do."""


# --- statistics ---------------------------------------------------------------------------------------------------


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median and min-max of repeated runs (None values, e.g. a run that produced nothing, are left out)."""
    found = [v for v in values if v is not None]
    if not found:
        return {"median": None, "min": None, "max": None, "runs": list(values)}
    return {
        "median": statistics.median(found),
        "min": min(found),
        "max": max(found),
        "runs": [None if v is None else round(v, 4) for v in values],
    }


def percentiles_ms(latencies_s: np.ndarray) -> dict[str, float | None]:
    if latencies_s.size == 0:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None, "mean_ms": None}
    p50, p99, p999 = (float(x) for x in np.percentile(latencies_s, [50, 99, 99.9], method="higher") * 1000)
    return {
        "p50_ms": float(p50),
        "p99_ms": float(p99),
        "p999_ms": float(p999),
        "max_ms": float(latencies_s.max() * 1000),
        "mean_ms": float(latencies_s.mean() * 1000),
    }


# --- CPU accounting -----------------------------------------------------------------------------------------------


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of ``pid`` and its descendants, by pid."""
    times: dict[int, float] = {}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return times
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            times[proc.pid] = t.user + t.system
    return times


def _machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / hz, total / hz


@dataclass
class CpuWindow:
    """Cores used by each component while a measurement ran (1.0 = one core fully busy)."""

    roots: dict[str, list[int]]  # component -> root pids (their descendants count too)
    loadgen: str = "vegeta"  # "vegeta": the waited-for child process; "bench": this process
    result: dict[str, float] = field(default_factory=dict)

    def __enter__(self) -> CpuWindow:
        self._t0 = time.monotonic()
        self._start = {name: self._sample(pids) for name, pids in self.roots.items()}
        self._machine0 = _machine_busy_s()[0]
        self._children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self._self0 = resource.getrusage(resource.RUSAGE_SELF)
        return self

    @staticmethod
    def _sample(pids: list[int]) -> dict[int, float]:
        out: dict[int, float] = {}
        for pid in pids:
            out.update(tree_cpu(pid))
        return out

    def __exit__(self, *exc: object) -> None:
        elapsed = max(1e-9, time.monotonic() - self._t0)
        for name, pids in self.roots.items():
            end = self._sample(pids)
            used = sum(t - self._start[name].get(pid, 0.0) for pid, t in end.items())
            self.result[name] = used / elapsed
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        me = resource.getrusage(resource.RUSAGE_SELF)
        child_s = (children.ru_utime + children.ru_stime) - (self._children0.ru_utime + self._children0.ru_stime)
        self_s = (me.ru_utime + me.ru_stime) - (self._self0.ru_utime + self._self0.ru_stime)
        self.result["loadgen"] = (child_s if self.loadgen == "vegeta" else self_s) / elapsed
        if self.loadgen == "vegeta":
            self.result["bench"] = self_s / elapsed
        machine = (_machine_busy_s()[0] - self._machine0) / elapsed
        self.result["machine"] = machine
        self.result["other"] = max(0.0, machine - sum(v for k, v in self.result.items() if k != "machine"))
        self.result = {k: round(v, 3) for k, v in self.result.items()}


class Guard:
    """This machine is shared (other sessions run tests against the same stack): wait until processes that are not
    part of the measurement are quiet before each measurement, and repeat one they disturbed.

    "Foreign" CPU is the machine's busy time minus the stack's, the API server's, vegeta's and this process's.
    """

    def __init__(self, roots: dict[str, list[int]], limit: float, wait_s: float, retries: int) -> None:
        self.roots = roots  # updated in place when a server starts or stops
        self.limit = limit
        self.wait_s = wait_s
        self.retries = retries
        self.disturbed = 0  # measurements kept although foreign load exceeded the limit

    def foreign_cores(self, seconds: float = 1.0) -> float:
        with CpuWindow(self.roots, loadgen="bench") as cpu:
            time.sleep(seconds)
        return cpu.result["other"]

    def wait_quiet(self) -> None:
        deadline = time.monotonic() + self.wait_s
        quiet = 0
        announced = False
        while time.monotonic() < deadline:
            foreign = self.foreign_cores()
            quiet = quiet + 1 if foreign <= self.limit else 0
            if quiet >= 2:
                return
            if not announced and foreign > self.limit:
                log(f"  waiting for other processes to go quiet ({foreign:.2f} cores busy outside the benchmark)")
                announced = True
        log(f"  the machine did not go quiet within {self.wait_s:.0f} s; measuring anyway (flagged)")

    def run(self, label: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """``measure()`` (its result has a "cpu" entry) on a quiet machine; repeated when foreign load disturbed it."""
        for attempt in range(1, self.retries + 2):
            self.wait_quiet()
            out = measure()
            foreign = out["cpu"]["other"]
            out["attempt"] = attempt
            out["disturbed"] = foreign > self.limit
            if not out["disturbed"]:
                return out
            again = attempt <= self.retries
            log(
                f"  {label}: other processes used {foreign:.2f} cores meanwhile; "
                + ("measuring again" if again else "kept, flagged as disturbed")
            )
        self.disturbed += 1
        return out


class LogCount:
    """Records in a topic (sum of its partitions' high watermarks): what was really appended."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-watermarks"})

    def __call__(self, topic: str) -> int:
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return sum(self._consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions)

    def close(self) -> None:
        self._consumer.close()


def check_stack() -> dict[str, list[int]]:
    """The stack's processes by component; BenchError when a component is not answering."""
    from deploy.local.stack import LocalStack

    rows = LocalStack().status()
    down = [row.name for row in rows if not row.ok]
    if down:
        raise BenchError(f"the local stack is not up ({', '.join(down)}) → run `.venv/bin/tradecore stack up`")
    roots: dict[str, list[int]] = {}
    for row in rows:
        if row.pid:
            roots.setdefault(row.name.split("-")[0], []).append(row.pid)
    return roots


def tradecore(env: dict[str, str], *args: str) -> None:
    done = subprocess.run([str(TRADECORE), *args], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"`tradecore {' '.join(args)}` failed:\n{done.stdout}{done.stderr}")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def cleanup(prefix: str) -> None:
    """Delete what this run put in the shared stack: its topics, its registry subjects, its write-side rows."""
    from sqlalchemy import create_engine, text

    from projections.settings import DatabaseSettings
    from schemas.registry import registry_client
    from schemas.settings import RegistrySettings
    from streams import kafka
    from streams.settings import KafkaSettings

    log(f"cleaning up the run's topics, subjects and rows ({prefix}*); --keep keeps them")
    try:
        admin = kafka.admin(KafkaSettings())
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            future.result()
    except Exception as err:  # best effort: report, do not hide the results
        log(f"  could not delete the topics: {err}")
    try:
        client = registry_client(RegistrySettings())
        for subject in client.get_subjects():
            if subject.startswith(prefix):
                client.delete_subject(subject)
                client.delete_subject(subject, permanent=True)
    except Exception as err:
        log(f"  could not delete the registry subjects: {err}")
    try:
        # The write side keeps each topic namespace's rows apart (column `namespace`, the topic prefix).
        engine = create_engine(DatabaseSettings().url)
        with engine.begin() as conn:
            for table in ("stream_sequences", "idempotency_keys", "orders"):
                conn.execute(text(f"DELETE FROM command_side.{table} WHERE namespace = :ns"), {"ns": prefix})
        engine.dispose()
    except Exception as err:
        log(f"  could not delete the write-side rows: {err}")


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def fmt(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def fmt_spread(stat: dict[str, Any], digits: int = 0) -> str:
    """median (min-max)"""
    if stat["median"] is None:
        return "-"
    if stat["min"] == stat["max"]:
        return fmt(stat["median"], digits)
    return f"{fmt(stat['median'], digits)} ({fmt(stat['min'], digits)}-{fmt(stat['max'], digits)})"


def fmt_ms(stat: dict[str, Any]) -> str:
    """A latency's median (min-max), to a precision that suits its size."""
    median = stat["median"]
    return fmt_spread(stat, 0 if median is None or median >= 100 else 1 if median >= 10 else 2)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def target_lines(targets: dict[str, Any], names: dict[str, str] | None = None, width: int = 40) -> list[str]:
    """One line per issue target: the target, what was measured, met or MISSED."""
    lines = []
    for key, target in targets.items():
        met = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        digits = 2 if isinstance(target["target"], float) else 0
        lines.append(
            f"  {(names or {}).get(key, key):<{width}} target {fmt(target['target'], digits):>9}  "
            f"measured {fmt(target['measured'], digits):>9}  {met}"
        )
    return lines


def report(
    run: Callable[[], dict[str, Any]],
    table: Callable[[dict[str, Any]], str],
    compact: Callable[[dict[str, Any]], dict[str, Any]],
) -> int:
    """Run a benchmark; the table on stdout, then its figures as one JSON line; errors on stderr."""
    try:
        results = run()
    except BenchError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    print(table(results))
    print(json.dumps(compact(results), default=str, separators=(",", ":")))
    return 0


def add_run_options(
    parser: argparse.ArgumentParser, *, quick: str, limit: float, retries: int, wait_s: float | None
) -> None:
    """What every benchmark takes: repetitions, the smoke mode (``quick`` says what it does), keeping the run's
    namespace, and the options of ``Guard`` (how much foreign load a measurement tolerates, what is done about more).
    """
    parser.add_argument("--repeat", type=int, default=None, help="repetitions of every measurement (default 3)")
    parser.add_argument("--quick", action="store_true", help=quick)
    parser.add_argument("--keep", action="store_true", help="keep the run's topics, subjects and rows afterwards")
    parser.add_argument(
        "--quiet-limit",
        type=float,
        default=limit,
        help=f"cores other processes may use during a measurement before it is repeated (default {limit:g})",
    )
    parser.add_argument(
        "--retries", type=int, default=retries, help=f"repeats of a measurement others disturbed (default {retries})"
    )
    parser.add_argument(
        "--quiet-wait", type=float, default=wait_s, help="longest wait for a quiet machine before each, seconds"
    )
